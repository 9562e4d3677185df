#!/usr/bin/env bash
# GPU check for a machine with an NVIDIA GPU (made for Ubuntu 24.04, pure cgroup v2, the driver
# under /usr/local/nvidia, no network, no NVIDIA container toolkit). One call, under 5 minutes:
#
#   bench/gpu-check.sh BERTH ROOTFS_TAR
#
# BERTH: a release build of berth (berth-monitor beside it, or berth dispatching on its name);
# ROOTFS_TAR: a small root file system tar (busybox). It runs, as root:
#   1. what the host has: /proc/driver/nvidia, /dev/nvidia*, the cgroup mode, `berth cdi list`;
#   2. `berth run --rm --gpus all IMG nvidia-smi -L` (must list every GPU the host lists);
#   3. `--gpus '"device=0"'` (exactly one GPU) and the device cgroup: GPU 1's node, made with
#      mknod inside a device=0 container, must not open (when the host has two GPUs);
#   4. a CUDA driver-API program (cuInit, cuCtxCreate, cuMemAlloc 1 MiB, cuMemsetD8,
#      cuMemcpyDtoH, checked) in the host's python3 through ctypes, bind-mounted read-only
#      (the interpreter, /usr/lib, /usr/lib64, /usr/local/lib; skipped, and said so, without
#      python3); then PyTorch the same way when the host's python3 imports torch from there;
#   5. start time: `run --rm IMG true` against `run --rm --gpus all IMG true` (medians of RUNS);
#   6. optionally the suite's test executables (GPU_CHECK_TESTS="path/to/gpu-xxxx ..."), built
#      on the CPU machine with `cargo test --no-run`, run against BERTH (BERTH_TEST_BIN).
# Every step prints PASS/FAIL/SKIP; the exit status is the number of FAILs.
set -u
BERTH=${1:?usage: bench/gpu-check.sh BERTH ROOTFS_TAR}
TAR=${2:?usage: bench/gpu-check.sh BERTH ROOTFS_TAR}
RUNS=${RUNS:-15}
BERTH=$(readlink -f "$BERTH")
W=$(mktemp -d /var/tmp/berth-gpu-check.XXXXXX)
export BERTH_ROOT=$W/root BERTH_RUNROOT=$W/run
fails=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
skip() { echo "SKIP: $*"; }
b() { timeout 60 "$BERTH" "$@"; }
cleanup() {
    "$BERTH" ps -aq --no-trunc 2>/dev/null | xargs -r "$BERTH" rm -f >/dev/null 2>&1
    umount -R "$W/root" 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "== host"
uname -r
stat -fc 'cgroup fs: %T' /sys/fs/cgroup
head -1 /proc/driver/nvidia/version 2>/dev/null || echo "no /proc/driver/nvidia/version"
ls -l /dev/nvidia* 2>/dev/null
HOST_GPUS=$(ls -d /proc/driver/nvidia/gpus/*/ 2>/dev/null | wc -l)
echo "GPUs listed by the driver: $HOST_GPUS"
b cdi list || fail "berth cdi list"

echo "== image"
b import -c 'CMD ["sh"]' "$TAR" gpucheck >/dev/null || { fail "import $TAR"; exit "$fails"; }

echo "== --gpus all nvidia-smi -L"
t=$(date +%s%N)
out=$(b run --rm --network none --gpus all gpucheck nvidia-smi -L 2>&1); rc=$?
echo "$out"; echo "($(ms "$t") ms)"
n=$(printf '%s\n' "$out" | grep -c '^GPU [0-9]')
if [ "$rc" = 0 ] && [ "$n" = "$HOST_GPUS" ] && [ "$n" -gt 0 ]; then pass "--gpus all lists $n GPUs"; else fail "--gpus all (rc $rc, $n GPUs of $HOST_GPUS)"; fi

echo "== --gpus '\"device=0\"'"
out=$(b run --rm --network none --gpus '"device=0"' gpucheck nvidia-smi -L 2>&1); rc=$?
echo "$out"
n=$(printf '%s\n' "$out" | grep -c '^GPU [0-9]')
if [ "$rc" = 0 ] && [ "$n" = 1 ]; then pass "device=0 sees one GPU"; else fail "device=0 (rc $rc, $n GPUs)"; fi
if [ "$HOST_GPUS" -ge 2 ]; then
    minor1=$(awk -F: '/Device Minor/ {gsub(/[ \t]/, "", $2); print $2}' "$(ls -d /proc/driver/nvidia/gpus/*/ | sed -n 2p)information")
    out=$(b run --rm --network none --gpus '"device=0"' gpucheck sh -c "mknod /tmp/g c 195 $minor1 && cat /tmp/g 2>&1 | head -c 200" 2>&1)
    case $out in *"Operation not permitted"*) pass "the device cgroup denies GPU 1 (minor $minor1)";; *) fail "GPU 1's node opened or failed otherwise: $out";; esac
else
    skip "cgroup check needs two GPUs"
fi

echo "== CUDA driver API (host python3 + ctypes)"
# The system's interpreter itself (an ELF binary; not a pyenv shim or other wrapper script).
PY=""
for c in /usr/bin/python3 "$(command -v python3 || true)"; do
    r=$(readlink -f "$c" 2>/dev/null || true)
    if [ -n "$r" ] && [ "$(head -c 4 "$r" 2>/dev/null | tail -c 3)" = ELF ]; then PY=$r; break; fi
done
# The host's python: its interpreter and /usr/lib (Ubuntu's /lib and /lib64 point into /usr),
# never all of /usr, so the driver's directory (/usr/local/nvidia) stays the container's own.
BINDS=()
if [ -n "$PY" ]; then
    BINDS=(-v "$PY:/usr/bin/python3:ro" -v /usr/lib:/usr/lib:ro -v /usr/lib:/lib:ro)
    [ -d /usr/lib64 ] && BINDS+=(-v /usr/lib64:/lib64:ro)
    [ -d /usr/local/lib ] && BINDS+=(-v /usr/local/lib:/usr/local/lib:ro)
fi
if [ -n "$PY" ]; then
    cat > "$W/cuda_check.py" <<'PYEOF'
import ctypes, sys
cuda = ctypes.CDLL("libcuda.so.1")
def ck(r, what):
    if r != 0:
        print(f"{what} failed: CUresult {r}"); sys.exit(1)
ck(cuda.cuInit(0), "cuInit")
n = ctypes.c_int(); ck(cuda.cuDeviceGetCount(ctypes.byref(n)), "cuDeviceGetCount")
dev = ctypes.c_int(); ck(cuda.cuDeviceGet(ctypes.byref(dev), 0), "cuDeviceGet")
ctx = ctypes.c_void_p(); ck(cuda.cuCtxCreate_v2(ctypes.byref(ctx), 0, dev), "cuCtxCreate")
size = 1 << 20
ptr = ctypes.c_uint64(); ck(cuda.cuMemAlloc_v2(ctypes.byref(ptr), ctypes.c_size_t(size)), "cuMemAlloc")
ck(cuda.cuMemsetD8_v2(ptr, ctypes.c_ubyte(7), ctypes.c_size_t(size)), "cuMemsetD8")
buf = (ctypes.c_ubyte * size)()
ck(cuda.cuMemcpyDtoH_v2(buf, ptr, ctypes.c_size_t(size)), "cuMemcpyDtoH")
ok = all(b == 7 for b in buf)
print(f"devices={n.value} alloc={size} at {hex(ptr.value)} readback={'ok' if ok else 'WRONG'}")
sys.exit(0 if ok else 1)
PYEOF
    t=$(date +%s%N)
    out=$(b run --rm --network none --gpus all "${BINDS[@]}" -v "$W/cuda_check.py:/cuda_check.py:ro" gpucheck /usr/bin/python3 /cuda_check.py 2>&1); rc=$?
    echo "$out"; echo "($(ms "$t") ms)"
    if [ "$rc" = 0 ]; then pass "CUDA allocation and read-back in a container"; else fail "CUDA program (rc $rc)"; fi
    torch=$("$PY" -c 'import torch, os; print(os.path.dirname(torch.__file__))' 2>/dev/null || true)
    if [ -n "$torch" ] && { [ "${torch#/usr/lib/}" != "$torch" ] || [ "${torch#/usr/local/lib/}" != "$torch" ]; }; then
        out=$(timeout 120 "$BERTH" run --rm --network none --gpus all "${BINDS[@]}" gpucheck /usr/bin/python3 -c \
            'import torch; x = torch.arange(1 << 20, device="cuda", dtype=torch.float64); print("torch", torch.cuda.get_device_name(0), x.sum().item())' 2>&1); rc=$?
        echo "$out"
        case "$rc:$out" in "0:"*549755289600.0*) pass "PyTorch computes on the GPU";; *) fail "PyTorch (rc $rc)";; esac
    else
        skip "PyTorch: the host's python3 does not import torch from /usr/lib or /usr/local/lib"
    fi
else
    skip "CUDA program: no python3 interpreter (ELF) on the host"
fi

echo "== start time (median of $RUNS, ms)"
for i in 1 2; do b run --rm --network none gpucheck true; b run --rm --network none --gpus all gpucheck true; done
plain=$(for i in $(seq "$RUNS"); do t=$(date +%s%N); b run --rm --network none gpucheck true; ms "$t"; done | median)
gpus=$(for i in $(seq "$RUNS"); do t=$(date +%s%N); b run --rm --network none --gpus all gpucheck true; ms "$t"; done | median)
echo "run --rm IMG true:              $plain ms"
echo "run --rm --gpus all IMG true:   $gpus ms (added: $(awk "BEGIN {print $gpus - $plain}") ms)"

if [ -n "${GPU_CHECK_TESTS:-}" ]; then
    echo "== suite test executables"
    for t in $GPU_CHECK_TESTS; do
        if BERTH_TEST_BIN=$BERTH timeout 120 "$t" --test-threads 2 >"$W/test.log" 2>&1; then
            pass "$(basename "$t")"
        else
            tail -30 "$W/test.log"; fail "$(basename "$t")"
        fi
    done
fi
echo "== $fails failure(s)"
exit "$fails"
