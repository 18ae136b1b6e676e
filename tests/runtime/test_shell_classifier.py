"""The shell command classifier on a table of command lines of the kind coding agents run.

Every line is labelled by hand with the class it must get. The bar: no line that writes, runs arbitrary
code, reaches the network or changes the agent's shell state is ever classified read-only (eligible to
run ahead); test runs are their own class (opt-in), never read-only.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolcast.runtime.shell import ShellClass, classify, classify_argv

READ_ONLY = [
    "ls", "ls -la", "ls -la src/", "ls -1 tests | head -20", "pwd", "cat README.md",
    "cat -n runtime/shell.py", "head -50 data/schema.py", "head -n 20 'file with spaces.txt'",
    "tail -n 100 build.log",
    "wc -l src/*.py", "wc -l $(git ls-files '*.py')", "rg 'def classify' runtime/", "rg -n --type py TODO",
    "rg -l \"import torch\" -g '!tests'", "grep -rn 'ToolContract' --include='*.py' .",
    "grep -c ';' Makefile", "grep -E 'a|b' file.txt", "grep -n \"foo > bar\" notes.md",
    "find . -name '*.py' -not -path './.venv/*'", "find . -type f -newer setup.py | head",
    "find src -maxdepth 2 -type d", "find . -name '*.pyc' -print", "git status", "git status --short",
    "git diff", "git diff --stat HEAD~1", "git diff main...HEAD -- runtime/", "git log --oneline -20",
    "git log -p -1 -- data/schema.py", "git show HEAD:README.md", "git show --stat abc123",
    "git branch", "git branch -a", "git branch --show-current", "git branch -vv",
    "git branch --list 'wip/*'", "git rev-parse --abbrev-ref HEAD", "git rev-parse --show-toplevel",
    "git ls-files | wc -l", "git blame -L 10,20 runtime/planner.py", "git --no-pager log -3",
    "git -C ../other status", "git remote -v", "git tag", "git tag -l 'v1.*'", "git stash list",
    "git config --get user.name", "git config user.email", "git describe --tags", "git shortlog -sn",
    "git grep -n classify", "git log --author=alice --since='2 weeks ago'", "git worktree list",
    "git cat-file -p HEAD", "git merge-base HEAD main", "git reflog", "git submodule status",
    "sed -n '1,80p' runtime/runtime.py", "sed -n 120,200p cli/main.py", "sed 's/foo/bar/g' in.txt",
    "sed -e 's/a/b/' -e 's/c/d/g' f", "sed -n '/def run/,/^$/p' x.py", "awk '{print $1}' data.txt",
    "awk -F: '{print $1}' /etc/passwd", "cut -d, -f1 data.csv | sort | uniq -c | sort -rn | head",
    "sort -u names.txt", "sort -k2 -n table.txt", "uniq -c counts.txt", "tr a-z A-Z < in.txt",
    "cat < input.txt", "diff -u a.py b.py", "cmp a.bin b.bin", "file image.png", "stat pyproject.toml",
    "du -sh .", "df -h", "tree -L 2", "echo hello", "echo \"$HOME\"", "printf '%s\\n' a b",
    "which python3", "command -v rg", "type ls", "uname -a", "whoami", "date", "date +%s", "env",
    "printenv PATH", "basename /a/b/c.py", "dirname /a/b/c.py", "realpath .", "readlink -f link",
    "jq '.tools | length' trace.json", "jq -r '.name' a.json b.json", "md5sum dist/*.whl",
    "sha256sum file", "xxd file.bin | head", "od -c file | head", "strings a.out | grep GLIBC",
    "nl -ba file.py | sed -n '10,30p'", "ls 2>/dev/null", "ls nonexistent 2>&1", "cat f > /dev/null",
    "grep foo f 2>/dev/null || echo none", "test -f setup.py && echo yes", "[ -d src ] && ls src",
    "ls; pwd; git status", "(cd src && ls)", "cat file | tee", "true", "echo done # comment > file",
    "LANG=C sort names.txt", "LC_ALL=C grep -n x f", "NO_COLOR=1 git diff", "GIT_PAGER=cat git log -1",
    "env LC_ALL=C ls", "timeout 10 rg foo", "time git status", "nice -n 10 du -sh .",
    "xargs -0 grep -l foo", "find . -name '*.md' | xargs wc -l", "find . -print0 | xargs -0 ls -l",
    "git ls-files -z | xargs -0 grep -n 'import'", "bash -lc 'ls -la && git status'",
    "sh -c 'cat README.md | head'", "bash -c \"grep -rn foo src\"", "cat <<'EOF'\nhello > world\nEOF",
    "cat <<EOF | wc -l\nline one\nline two\nEOF", "grep -f <(echo foo) file", "diff <(ls a) <(ls b)",
    "cat `git ls-files | head -1`", "rg -n 'x' \\\n  src/", "python3 --version", "node --version",
    "git --version", "fd -e py", "ls -la | awk '{print $5, $9}'", "head -c 100 /dev/urandom | xxd",
    "ps aux | grep python", "echo 'a > b' | cat", "grep '&&' script.sh", "echo \"a | b\"",
    "rg --files | head -50", "ls | sort -r", "tail -5 log.txt && head -5 log.txt",
    "find . -name '*.json' -size +1M", "cat *.md | wc -w", "sed -ne '1,5p' f", "sed -n -e '/x/p' f",
    "git config --get-regexp 'alias.*'", "git log --output-indicator-new=+ -1",
]

TEST_RUNNER = [
    "pytest", "pytest -x -q tests/runtime", "python -m pytest tests/ -k shell", "python3 -m pytest -q",
    "pytest tests/test_a.py::test_b -vv 2>&1 | tail -30", "cd /repo && pytest -x",
    "PYTHONPATH=src pytest tests", "npm test", "npm run test", "npm run test:unit", "yarn test",
    "pnpm test", "go test ./...", "go test -run TestFoo ./pkg/...", "cargo test", "cargo test --release",
    "python -m unittest discover", "ruff check .", "mypy runtime/", "CI=1 npm test",
    "timeout 300 pytest -q", "pytest -q | grep -E 'passed|failed'", "tsc --noEmit",
]

DENIED = [
    # writes through redirection
    "ls > files.txt", "echo hi >> notes.md", "cat a > b", "git diff > patch.diff", "echo x >| f",
    "ls &> out.log", "ls &>> out.log", "rg foo 2> err.txt", "sort names.txt >& sorted.txt",
    "cat <<EOF > config.yaml\nkey: value\nEOF", "cat > new.py <<'EOF'\nprint(1)\nEOF",
    "echo data | tee out.txt", "ls | tee -a log.txt", "grep foo f 1>out", "exec 3> file",
    "ls <> file", "echo x > /dev/sda",
    # file changes and commands that run programs
    "rm -rf build", "rm file.txt", "mv a b", "cp a b", "mkdir -p out", "touch x", "chmod +x run.sh",
    "ln -s a b", "truncate -s 0 f", "dd if=/dev/zero of=f bs=1 count=1", "sed -i 's/a/b/' f.py",
    "sed -i.bak 's/a/b/' f.py", "sed --in-place 's/a/b/' f", "sed 's/a/b/w out.txt' f", "sed -n '1e ls' f",
    "sed 'r other.txt' f", "sed -f script.sed f", "awk '{print > \"out\"}' f",
    "awk 'BEGIN{system(\"rm x\")}'", "awk -i inplace '{print}' f", "sort -o out.txt in.txt",
    "sort --output=out in", "sort -uo out in",
    "uniq in.txt out.txt", "xxd -r dump bin", "tree -o out.txt", "patch -p1 < fix.diff",
    "find . -name '*.pyc' -delete", "find . -exec rm {} \\;", "find . -execdir chmod 644 {} +",
    "find . -fprint out.txt", "find / -ok rm {} \\;", "fd -x rm", "rg --pre ./decode foo",
    "xargs rm", "find . -name '*.tmp' | xargs rm -f", "ls | xargs -I{} mv {} {}.bak", "xargs -p ls",
    # git that writes or runs programs
    "git add .", "git commit -m 'wip'", "git commit -am \"fix\"", "git push", "git push --force origin main",
    "git pull", "git fetch", "git checkout main", "git checkout -- file.py", "git switch -c new",
    "git reset --hard HEAD~1", "git restore f", "git clean -fdx", "git stash", "git stash pop",
    "git merge feature", "git rebase -i HEAD~3", "git cherry-pick abc", "git apply fix.patch",
    "git branch new-feature", "git branch -D old", "git branch -m old new", "git tag v1.0",
    "git tag -d v1.0", "git -c core.pager='rm -rf ~' log", "git -c alias.x='!rm -rf /' x",
    "git diff --output=out.diff", "git log --output=log.txt", "git diff --ext-diff",
    "git config user.name bob", "git config --unset user.name", "git remote add origin url",
    "git grep -O foo", "git --exec-path=/tmp status", "git worktree add ../x", "git stash drop",
    # privileges, packages, network, interpreters
    "sudo ls", "sudo apt-get install jq", "apt-get update", "pip install requests", "pip3 install -e .",
    "npm install", "npm ci", "yarn add lodash", "pnpm install", "cargo build", "cargo install ripgrep",
    "go get example.com/x", "go build ./...", "brew install jq", "uv sync", "poetry install",
    "curl https://example.com", "curl -X POST -d @data.json https://api.example.com/x",
    "wget https://example.com/file", "ssh host ls", "scp a host:b", "nc -l 8080",
    "python script.py", "python -c 'import os; os.remove(\"x\")'", "python3 - <<'EOF'\nprint(1)\nEOF",
    "node index.js", "node -e 'require(\"fs\").writeFileSync(\"x\", \"\")'", "perl -pi -e 's/a/b/' f",
    "ruby -e 'puts 1'", "make", "make install", "docker run ubuntu", "kill -9 1234", "pkill python",
    "npx prettier --write .", "ruff check --fix .", "ruff format .", "eslint --fix src",
    "tsc", "tsc --noEmit --watch",
    # shell state, control flow and what the parser does not follow
    "export FOO=1", "FOO=1", "source venv/bin/activate", ". venv/bin/activate", "alias ll='ls -l'",
    "unset PATH", "set -e", "eval \"$CMD\"", "exec ls", "$CMD", "${EDITOR} file", "$(echo rm) -rf x",
    "`echo rm` x", "ls & sleep 1", "sleep 100 &", "nohup ls", "for f in *.py; do wc -l $f; done",
    "while true; do ls; done", "if [ -f x ]; then rm x; fi", "f() { ls; }; f", "echo $((1+2))",
    "case $x in a) ls;; esac", "ls | tee >(rm x)", "echo 'unclosed", "echo \"unclosed",
    "cat <<EOF\nno end", "LD_PRELOAD=/tmp/x.so ls", "PAGER=rm git log", "GIT_PAGER='rm -rf /' git log",
    "GIT_EXTERNAL_DIFF=rm git diff", "env GIT_PAGER=vim git log", "env -S 'rm x'", "env rm x",
    "timeout 5 rm -rf x", "nice rm x", "time make", "command rm x", "bash script.sh", "sh", "bash -i",
    "bash -c 'rm -rf /'", "sh -c 'ls > out'", "cat <<EOF\n$(rm -rf x)\nEOF", "cat <<EOF\n`rm x`\nEOF",
    "echo $(ls > out)", "ls $(rm x)", "ls `touch x`", "cat <(rm x)", "tail -f log.txt", "tail -F x",
    "less README.md", "vim file", "nano file", "top", "watch ls", "yes", "date -s '2020-01-01'",
    "hostname newname", "ls ;; ls", "ls && rm x", "ls || rm x", "ls | rm x", "ls\nrm x", "(ls; rm x)",
    "./run_tests.sh", "/tmp/evil", "scripts/build.sh --release", "ls # ok\nrm -rf /",
    # GNU getopt and git take unambiguous prefixes of long options
    "sed --i 's/a/b/' f", "sed --in 's/a/b/' f", "sed -l 5 's/a/b/w x' f", "sort --out=x in",
    "sort --compress=gzip f", "git diff --outp=x", "git log --out x", "git diff --ext", "tail --fol log",
    "git config --unse user.name", "git config --rep a b", "awk --fi=prog.awk f", "xargs --inter ls",
    "file --comp magic", "date --se='2020-01-01'", "ls\rrm -rf x",
]


@pytest.mark.parametrize("line", READ_ONLY)
def test_read_only_lines_are_eligible(line):
    verdict = classify(line)
    assert verdict.kind is ShellClass.READ_ONLY, f"{line!r}: {verdict.reason}"


@pytest.mark.parametrize("line", TEST_RUNNER)
def test_test_runs_are_their_own_class(line):
    assert classify(line).kind is ShellClass.TEST_RUNNER


@pytest.mark.parametrize("line", DENIED)
def test_unsafe_lines_are_denied(line):
    verdict = classify(line)
    assert verdict.kind is ShellClass.DENIED
    assert verdict.reason


def test_table_is_large_and_no_unsafe_line_is_eligible():
    assert len(READ_ONLY) + len(TEST_RUNNER) + len(DENIED) >= 150
    unsafe_but_eligible = [line for line in TEST_RUNNER + DENIED if classify(line).read_only]
    assert unsafe_but_eligible == []


def test_cd_is_denied_in_a_persistent_shell_only():
    assert classify("cd src && ls").kind is ShellClass.READ_ONLY
    assert classify("cd src && ls", persistent_cwd=True).kind is ShellClass.DENIED
    assert classify("cd /repo && pytest -x", persistent_cwd=True).kind is ShellClass.DENIED


def test_argv_form_of_codex_shell_calls():
    assert classify_argv(["bash", "-lc", "rg -n foo src | head"]).read_only
    assert classify_argv(["ls", "-la"]).read_only
    assert classify_argv(["bash", "-lc", "echo x > f"]).kind is ShellClass.DENIED
    assert classify_argv(["rm", "-rf", "/"]).kind is ShellClass.DENIED
    assert classify_argv([]).kind is ShellClass.DENIED
    assert classify_argv(["ls", 3]).kind is ShellClass.DENIED  # type: ignore[list-item]


# ---- property: a write redirection anywhere in a line denies it ----------------------------------------

_WORD = st.sampled_from(["ls", "cat", "grep", "foo", "-n", "src/", "'a b'", "\"x\"", "git", "status", "|",
                         "&&", ";", "2>&1", "||", "-la", "*.py", "$(ls)", "head", "-5", "(", ")"])
_WRITE_OPS = st.sampled_from([">", ">>", ">|", "&>", "&>>", "2>", "1>", ">&", "2>>"])
_TARGET = st.sampled_from(["out.txt", "f", "/tmp/x", "~/.bashrc", "'a file'", "\"$HOME/x\"", "../up",
                           "build/log"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_WORD, max_size=8), _WRITE_OPS, _TARGET, st.lists(_WORD, max_size=6),
       st.sampled_from(["", " "]))
def test_any_line_with_a_write_redirection_is_denied(before, op, target, after, space):
    line = " ".join(["ls", *before, f"{op}{space}{target}", *after])
    assert classify(line).kind is ShellClass.DENIED, line


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab >|&;$()`'\"\\\n<-2#{}")), max_size=30), _TARGET)
def test_a_write_redirection_after_arbitrary_text_is_denied(prefix, target):
    """Whatever text precedes it (open quotes, comments, here-docs, escapes), a line that ends with an
    unquoted write redirection on a line of its own is denied: a quote left open makes the line
    unparseable (denied), a comment ends at the newline."""
    line = f"{prefix} > {target}\nls > {target}"
    assert classify(line).kind is ShellClass.DENIED, line
