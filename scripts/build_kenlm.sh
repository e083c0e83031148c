#!/usr/bin/env bash
# Build KenLM's estimator (lmplz) and build_binary from the kenlm sdist on PyPI and install them.
#
#   scripts/build_kenlm.sh [PREFIX]        PREFIX defaults to $DECANT_KENLM_BIN or /usr/local/bin
#
# Idempotent: exits at once when both binaries already exist in PREFIX (or on PATH) and run.
# Needs: apt-get (Debian/Ubuntu) for the build dependencies unless they are already installed,
# pip (downloads the kenlm sdist from PyPI), cmake, a C++ compiler. CI and docker/ call this.
set -euo pipefail

PREFIX="${1:-${DECANT_KENLM_BIN:-/usr/local/bin}}"
KENLM_VERSION="${KENLM_VERSION:-}"          # empty: the newest kenlm sdist on PyPI
JOBS="${JOBS:-2}"

works() {  # works BIN: the binary exists and prints its usage (exit codes vary, so look at output)
    local b="$1"
    [ -x "$b" ] || return 1
    local out
    out="$("$b" --help 2>&1 </dev/null || true)"   # no pipe into grep -q: SIGPIPE + pipefail
    printf '%s' "$out" | grep -qiE "usage|kneser|build_binary|lmplz"
}

found() {  # found NAME: path of a working NAME in PREFIX or on PATH
    local name="$1" p
    for p in "$PREFIX/$name" "$(command -v "$name" 2>/dev/null || true)"; do
        if [ -n "$p" ] && works "$p"; then echo "$p"; return 0; fi
    done
    return 1
}

if L=$(found lmplz) && B=$(found build_binary); then
    echo "kenlm: lmplz ($L) and build_binary ($B) already work; nothing to do"
    exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

# --- build dependencies (Debian package names) -------------------------------------------
DEPS="build-essential cmake libboost-program-options-dev libboost-system-dev libboost-thread-dev \
libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev"
missing=""
for p in $DEPS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if command -v apt-get >/dev/null; then
        echo "kenlm: installing build dependencies:$missing"
        export DEBIAN_FRONTEND=noninteractive
        $SUDO apt-get update -qq
        $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
    else
        echo "kenlm: missing build dependencies ($missing) and no apt-get; install them first" >&2
        exit 1
    fi
fi

# --- sources --------------------------------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/kenlm-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
SPEC="kenlm"; [ -n "$KENLM_VERSION" ] && SPEC="kenlm==$KENLM_VERSION"
PY="${PYTHON:-$(command -v python3 || command -v python)}"
echo "kenlm: downloading the $SPEC sdist from PyPI"
# --no-binary kenlm (not :all:): pip still prepares metadata, and its build tools may come as wheels
"$PY" -m pip download -q "$SPEC" --no-binary kenlm --no-deps -d "$WORK/dl" 2>&1 | grep -v "is ignored" || true
ls "$WORK"/dl/kenlm-* >/dev/null 2>&1 || { echo "kenlm: could not download the kenlm sdist" >&2; exit 1; }
SDIST=""; for f in "$WORK"/dl/kenlm-*; do SDIST="$f"; break; done
mkdir -p "$WORK/src"
case "$SDIST" in
    *.zip) (cd "$WORK/src" && "$PY" -m zipfile -e "$SDIST" .) ;;
    *) tar -xzf "$SDIST" -C "$WORK/src" ;;
esac
SRC=""; for d in "$WORK"/src/*/; do [ -f "$d/CMakeLists.txt" ] && { SRC="${d%/}"; break; }; done
[ -n "$SRC" ] && [ -f "$SRC/lm/builder/CMakeLists.txt" ] || { echo "kenlm: no lm/builder in $SDIST" >&2; exit 1; }

# --- build ----------------------------------------------------------------------------------
echo "kenlm: building lmplz and build_binary in $SRC/build (make -j$JOBS)"
mkdir -p "$SRC/build"
if ! (cd "$SRC/build" && cmake .. -DCMAKE_BUILD_TYPE=Release -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
        && make -j"$JOBS" lmplz build_binary) >"$WORK/build.log" 2>&1; then
    tail -n 40 "$WORK/build.log" >&2
    echo "kenlm: build failed (output above)" >&2
    exit 1
fi

$SUDO mkdir -p "$PREFIX"
for b in lmplz build_binary; do
    $SUDO install -m 0755 "$SRC/build/bin/$b" "$PREFIX/$b"
    works "$PREFIX/$b" || { echo "kenlm: $PREFIX/$b does not run" >&2; exit 1; }
done
echo "kenlm: installed $PREFIX/lmplz and $PREFIX/build_binary"
case ":$PATH:" in *":$PREFIX:"*) ;; *) echo "kenlm: note: $PREFIX is not on PATH; set DECANT_KENLM_BIN=$PREFIX" ;; esac
