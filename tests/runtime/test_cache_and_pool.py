"""The cache (exact match, epochs, reads/mutates, TTL, serve once) and the pool (real calls first)."""

from __future__ import annotations

from toolcast.runtime.cache import SpeculationCache, State
from toolcast.runtime.pool import WorkerPool


def add(cache, key="a", reads=None, ttl=10.0, now=0.0, session="s"):
    return cache.add(session, "get", key, {}, reads=reads, ttl=ttl, now=now)


def test_claim_needs_the_exact_key_and_serves_once():
    c = SpeculationCache()
    e = add(c, '{"x":1}')
    c.finish(e, now=1.0, result="r")
    assert c.claim("s", "get", '{"x":2}', 2.0) is None
    assert c.claim("s", "other", '{"x":1}', 2.0) is None
    assert c.claim("other-session", "get", '{"x":1}', 2.0) is None
    assert c.claim("s", "get", '{"x":1}', 2.0) is e
    assert c.claim("s", "get", '{"x":1}', 2.0) is None  # claimed already


def test_claim_prefers_a_finished_run():
    c = SpeculationCache()
    running = add(c)
    done = add(c, now=0.5)
    c.finish(done, now=1.0, result="r")
    assert c.claim("s", "get", "a", 1.0) is done
    assert c.claim("s", "get", "a", 1.0) is running


def test_epoch_bump_discards_everything_of_the_session_only():
    c = SpeculationCache()
    e1, e2 = add(c, "a"), add(c, "b", reads=frozenset({"k"}))
    other = add(c, "a", session="t")
    out = c.invalidate("s", None)
    assert set(out) == {e1, e2} and all(e.invalid for e in out)
    assert c.epoch("s") == 1 and c.epoch("t") == 0
    assert c.claim("s", "get", "a", 1.0) is None
    assert c.claim("t", "get", "a", 1.0) is other


def test_mutates_invalidate_only_overlapping_reads():
    c = SpeculationCache()
    a = add(c, "a", reads=frozenset({"order:1"}))
    b = add(c, "b", reads=frozenset({"order:2"}))
    undeclared = add(c, "c", reads=None)
    out = c.invalidate("s", frozenset({"order:1"}))
    assert set(out) == {a, undeclared}
    assert c.claim("s", "get", "b", 1.0) is b and c.epoch("s") == 0


def test_ttl_and_failures():
    c = SpeculationCache()
    e = add(c, "a", ttl=5.0)
    c.finish(e, now=1.0, result="r")
    assert c.claim("s", "get", "a", 5.0) is None  # 5 s after its start: stale
    assert c.expire(5.0) == [e]
    f = add(c, "b")
    c.finish(f, now=1.0, error=RuntimeError("x"))
    assert f.state is State.FAILED and c.claim("s", "get", "b", 1.0) is None


def test_a_claimed_run_stays_visible_to_invalidation():
    c = SpeculationCache()
    e = add(c)
    assert c.claim("s", "get", "a", 0.5) is e
    c.invalidate("s", None)
    c.finish(e, now=1.0, result="r")
    assert not c.servable(e, 1.0, check_ttl=False)


def test_pool_real_calls_preempt_the_newest_speculation():
    pool = WorkerPool(2)
    assert pool.try_speculative(1) and pool.try_speculative(2)
    assert not pool.try_speculative(3)  # speculation never queues
    adm = pool.authoritative(10)
    assert adm.started and adm.preempted == 2
    adm = pool.authoritative(11)
    assert adm.started and adm.preempted == 1
    adm = pool.authoritative(12)
    assert not adm.started and pool.queued == 1  # only real calls left: wait
    assert not pool.try_speculative(4)  # a real call waits: no speculation
    assert pool.release(10) == [12]
    assert pool.release(999) == []  # unknown or pre-empted job: no-op
    pool.authoritative(13)
    pool.withdraw(13)
    assert pool.queued == 0


def test_pool_a_promoted_speculative_job_is_never_preempted():
    pool = WorkerPool(1)
    assert pool.try_speculative(1) and pool.promote(1)
    adm = pool.authoritative(10)
    assert not adm.started and adm.preempted is None  # waits for the run a real call depends on
    assert pool.release(1) == [10]
    assert not pool.promote(999)
