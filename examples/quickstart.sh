#!/usr/bin/env bash
# Quick start: install casstore into .venv and run a real example in a throw-away Git repo:
# track a generated 200 MiB "model", delete it, restore it byte-identical, edit 1 MiB of it
# and show that the cache grows by about 1 MiB, not 200.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON_BIN:-python3}"
if [ ! -x "$here/.venv/bin/cas" ]; then
    "$PY" -m venv "$here/.venv"
    "$here/.venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$here[test]"
fi
export PATH="$here/.venv/bin:$PATH"

demo="$(mktemp -d)"
trap 'rm -rf "$demo"' EXIT
cd "$demo"
git init -q -b main
git config user.email demo@example.com
git config user.name Demo
cas init

echo "== generating model.pth (200 MiB) and a data folder"
python -c "import os; open('model.pth','wb').write(os.urandom(200 << 20))"
mkdir -p data/train data/test
for i in $(seq 1 50); do head -c 4096 /dev/urandom > "data/train/$i.bin"; done
echo "label,value" > data/test/labels.csv
before="$(xxh128sum model.pth 2>/dev/null || python -c "import xxhash;print(xxhash.xxh3_128_hexdigest(open('model.pth','rb').read()), ' model.pth')")"

echo "== cas add data/ model.pth"
time cas add data/ model.pth
cat model.pth.cas
git add data.cas model.pth.cas .gitignore .cas/config.yaml .cas/.gitignore
git commit -qm "track data and model"

echo "== rm -rf data model.pth && cas checkout"
rm -rf data model.pth
time cas checkout
after="$(xxh128sum model.pth 2>/dev/null || python -c "import xxhash;print(xxhash.xxh3_128_hexdigest(open('model.pth','rb').read()), ' model.pth')")"
[ "$before" = "$after" ] && echo "model.pth restored byte-identical: $after"
cas status

echo "== edit 1 MiB in the middle of model.pth, then re-add"
python - <<'PY'
import os
with open("model.pth", "r+b") as f:
    f.seek(100 << 20)
    f.write(os.urandom(1 << 20))
PY
cas status || true
du -sb .cas/cache | awk '{print "cache before:", $1, "bytes"}'
cas add model.pth
du -sb .cas/cache | awk '{print "cache after: ", $1, "bytes"}'
cas ls
cas gc --dry-run
cas fsck
