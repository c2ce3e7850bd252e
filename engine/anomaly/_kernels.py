"""Numba-compiled cores of the streaming detectors.

Every kernel has the shape ``run(params, <state arrays...>, values, out)``: it
consumes ``values`` in order, writes one score per value into ``out`` and
leaves the state arrays describing the stream so far.  The point-by-point API
calls the very same kernel with a one-element array, so batch and single-step
results are identical by construction (and a test checks it).

Non-finite inputs (NaN, +-inf) are skipped: they score 0.0 and leave the state
untouched, so a missing sample never poisons the statistics.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_SQRT2 = math.sqrt(2.0)
_JIT = {"cache": True, "nogil": True}

# --------------------------------------------------------------------------
# Windowed Gaussian (NAB's baseline, same semantics)
# --------------------------------------------------------------------------
# params: [window, step]
# fs: [mean, std, welford_mean, welford_m2]
# ist: [n_in_window, ring_pos, step_count]
WG_F = 4
WG_I = 3


@njit(**_JIT)
def wg_run(params, fs, ist, buf, values, out):  # pragma: no cover - jitted
    window = buf.shape[0]
    step = int(params[1])
    for i in range(values.shape[0]):
        x = values[i]
        if not math.isfinite(x):
            out[i] = 0.0
            continue
        n = ist[0]
        if n > 0:
            z = abs(x - fs[0]) / fs[1]
            out[i] = 1.0 - 0.5 * math.erfc(z / _SQRT2)
        else:
            out[i] = 0.0
        if n < window:
            # growing phase: statistics of every value so far (Welford)
            buf[n] = x
            n += 1
            ist[0] = n
            d = x - fs[2]
            fs[2] += d / n
            fs[3] += d * (x - fs[2])
            var = fs[3] / n
            std = math.sqrt(var) if var > 0.0 else 0.0
            fs[0] = fs[2]
            fs[1] = std if std > 0.0 else 1e-6
        else:
            # full: the ring always holds the newest `window` values; the
            # statistics move only every `step` values (as NAB's detector).
            pos = ist[1]
            buf[pos] = x
            ist[1] = (pos + 1) % window
            ist[2] += 1
            if ist[2] >= step:
                ist[2] = 0
                s = 0.0
                for j in range(window):
                    s += buf[j]
                mean = s / window
                s2 = 0.0
                for j in range(window):
                    d = buf[j] - mean
                    s2 += d * d
                std = math.sqrt(s2 / window)
                fs[0] = mean
                fs[1] = std if std > 0.0 else 1e-6


# --------------------------------------------------------------------------
# Sentinel: contextual surprise channels + calibrated likelihood + hold-off
# --------------------------------------------------------------------------
# params layout
P_LEVELS = 0       # quantisation levels across the running range (B)
P_ORDERS = 1       # longest sequence context, in symbols (K)
P_SPATIAL = 2      # tolerance (fraction of range) for out-of-range alarms; <0 off
P_AVG = 3          # short averaging window of each channel (= ring length); 0 = off
P_SKIP = 4         # first points not used for the likelihood statistics
P_MINSTAT = 5      # statistics samples needed before any score is emitted
P_LONG = 6         # horizon of the long-run mean/variance (EW, points)
P_STDFLOOR = 7     # floor of the long-run std of an averaged channel
P_MEANFLOOR = 8    # floor of the long-run mean
P_HOLD = 9         # hold-off after an alarm (points)
P_ARM = 10         # output level that arms the hold-off
P_TOD = 11         # time-of-day buckets of the calendar channel (0 = off)
P_AVGLONG = 12     # horizon (points) of the slow exponential average; 0 = off
P_CALLONG = 13     # horizon (observations) of each calendar bucket's mean/var
P_CALDAYS = 14     # distinct days a bucket needs before it is used
P_CALFLOOR = 15    # floor of a bucket's std, as a fraction of the running range
P_PRIORN = 16      # weight (in points) of the Gaussian prior in the calibration
P_CALIB = 17       # forgetting horizon (points) of the calibration histogram
P_CHMASK = 18      # bit c set = channel c scored (1 sequence, 2 rarity, 4 calendar)
P_N = 19

ZBINS = 64         # histogram of the stream's own z statistics, bins of _ZSTEP
_ZSTEP = 0.2

# channels: 0 = sequence surprise (orders 1..K), 1 = value rarity (order 0),
#           2 = calendar surprise (value vs. the profile of its hour-of-day
#               and weekday/weekend bucket)
NCH = 3

# float state
F_LO = 0
F_HI = 1
F_LEVEL = 2        # level of the alarm that armed the hold-off
F_SCORE = 3        # last score before hold-off
F_ZN = 4           # current weight scale of the z histogram (starts at 1)
F_WHY = 5          # statistic with the largest z: 2*channel + (0 short, 1 slow)
F_CH = 6           # per channel c at F_CH + 9c: raw, then (average, mean, var)
#                    of the short window (+1..+3) and of the slow average
#                    (+4..+6), raw samples seen (+7), statistics samples (+8)
F_STRIDE = 9
F_N = F_CH + F_STRIDE * NCH

# int state
I_N = 0        # finite points seen
I_NSTAT = 1    # samples folded into the long-run statistics
I_QUIET = 2    # remaining hold-off points (likelihood channels)
I_SPARE = 3    # reserved
I_QHI = 4      # remaining hold-off of above-range alarms
I_QLO = 5      # remaining hold-off of below-range alarms
I_N_ = 6

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_ONE = np.uint64(1)
_SEED = np.uint64(0x243F6A8885A308D3)
_TSEED = np.uint64(0x13198A2E03707344)
_PAIR = np.uint64(0xA4093822299F31D0)  # separates (context, symbol) keys from contexts
_CMAX = 1 << 30
_LOG_EPS = math.log(1e-10)


@njit(inline="always")
def _mix(h, v):  # pragma: no cover - jitted
    """splitmix64-style combination of a running hash and a small integer."""
    z = h ^ ((v + _ONE) * _M1)
    z = (z ^ (z >> _S30)) * _M2
    z = (z ^ (z >> _S27)) * _M3
    return z ^ (z >> _S31)


@njit(inline="always")
def _log_score(lik):  # pragma: no cover - jitted
    """Map a likelihood in [0, 1] to [0, 1] on a log scale: 1 - 1e-k -> k/10."""
    v = math.log(1.0000000001 - lik) / _LOG_EPS
    if v < 0.0:
        return 0.0
    if v > 1.0:
        return 1.0
    return v


@njit(inline="always")
def _count(keys, counts, mask, key):  # pragma: no cover - jitted
    """Return how often ``key`` was counted before, then count it once more.

    2-way set-associative table: ``key`` may live in slot ``s`` or ``s ^ 1``.
    Counts saturate at 2**30.
    """
    s0 = key & mask
    s1 = s0 ^ _ONE
    if keys[s0] == key:
        c = counts[s0]
        if c < _CMAX:
            counts[s0] = c + 1
        return c
    if keys[s1] == key:
        c = counts[s1]
        if c < _CMAX:
            counts[s1] = c + 1
        return c
    # not found: the less-counted resident loses one count and is replaced
    # only once it has none left, so frequent contexts survive the churn of
    # one-off high-order contexts (a count-decrementing admission policy)
    victim = s0 if counts[s0] <= counts[s1] else s1
    if counts[victim] <= 1:
        keys[victim] = key
        counts[victim] = 1
    else:
        counts[victim] -= 1
    return 0


@njit(inline="always")
def _surprise(keys, counts, mask, ctx, usym):  # pragma: no cover - jitted
    """1 - P(symbol | context) from counts (1.0 for a context never seen)."""
    c_ctx = _count(keys, counts, mask, ctx | _ONE)
    c_pair = _count(keys, counts, mask, _mix(ctx ^ _PAIR, usym) | _ONE)
    if c_pair > c_ctx:  # possible after an eviction of the context
        return 0.0
    return 1.0 - c_pair / (c_ctx + 1.0)


@njit(**_JIT)
def sentinel_run(params, fs, ist, hist, ring, keys, counts, cal, zh, values, times, out):  # pragma: no cover
    levels = int(params[P_LEVELS])
    orders = hist.shape[0]
    tol = params[P_SPATIAL]
    navg = ring.shape[1]
    use_short = params[P_AVG] > 0.0
    skip = int(params[P_SKIP])
    minstat = int(params[P_MINSTAT])
    alpha_min = 1.0 / params[P_LONG]
    std_floor = params[P_STDFLOOR]
    mean_floor = params[P_MEANFLOOR]
    hold = int(params[P_HOLD])
    arm = params[P_ARM]
    tod = int(params[P_TOD])
    beta = 1.0 / params[P_AVGLONG] if params[P_AVGLONG] > 0.0 else 0.0
    cal_alpha = 1.0 / params[P_CALLONG]
    cal_days = params[P_CALDAYS]
    cal_floor = params[P_CALFLOOR]
    prior_n = params[P_PRIORN]
    calib = params[P_CALIB]
    chmask = int(params[P_CHMASK])
    mask = np.uint64(keys.shape[0] - 1)
    has_times = times.shape[0] == values.shape[0]
    raw = np.zeros(NCH)
    active = np.zeros(NCH, dtype=np.bool_)

    for i in range(values.shape[0]):
        x = values[i]
        if not math.isfinite(x):
            out[i] = 0.0
            continue
        n = ist[I_N]

        # ---- online range and out-of-range ("spatial") alarm -------------
        sp_dir = 0
        if n == 0:
            fs[F_LO] = x
            fs[F_HI] = x
        else:
            lo = fs[F_LO]
            hi = fs[F_HI]
            if tol >= 0.0 and hi > lo:
                t = (hi - lo) * tol
                if x > hi + t:
                    sp_dir = 1
                elif x < lo - t:
                    sp_dir = -1
            if x < lo:
                fs[F_LO] = x
            if x > hi:
                fs[F_HI] = x
        lo = fs[F_LO]
        hi = fs[F_HI]

        # ---- quantise into `levels` symbols over the range seen so far ----
        sym = 0
        if hi > lo:
            sym = int((x - lo) / (hi - lo) * levels)
            if sym >= levels:
                sym = levels - 1
            sym = max(sym, 0)
        usym = np.uint64(sym)

        # ---- raw channels: surprise = 1 - P(symbol | context) --------------
        h = _SEED
        raw[1] = _surprise(keys, counts, mask, h, usym)      # value rarity
        active[1] = True
        acc = 0.0
        for k in range(orders):
            if k < n:
                h = _mix(h, np.uint64(hist[k]))
                acc += _surprise(keys, counts, mask, h, usym)
            else:
                acc += 1.0
        raw[0] = acc / orders                                  # sequence
        active[0] = True
        active[2] = False
        if tod > 0 and has_times and math.isfinite(times[i]):
            ts = times[i]
            dayf = math.floor(ts / 86400.0)
            bucket = int((ts - dayf * 86400.0) / 86400.0 * tod)
            if bucket >= tod:
                bucket = tod - 1
            day = int(dayf)
            if (day + 3) % 7 >= 5:       # 1970-01-01 was a Thursday
                bucket += tod
            # two-sided Gaussian surprise of x against this bucket's profile
            if cal[bucket, 3] >= cal_days:
                std = math.sqrt(cal[bucket, 1]) if cal[bucket, 1] > 0.0 else 0.0
                floor = (hi - lo) * cal_floor
                std = max(std, floor)
                if std > 0.0:
                    z = abs(x - cal[bucket, 0]) / std
                    raw[2] = 1.0 - math.erfc(z / _SQRT2)
                else:
                    raw[2] = 0.0 if x == cal[bucket, 0] else 1.0
                active[2] = True
            # then learn x into the bucket (EW mean/var, expanding at first)
            nb = cal[bucket, 2] + 1.0
            cal[bucket, 2] = nb
            ab = 1.0 / nb
            ab = max(ab, cal_alpha)
            d = x - cal[bucket, 0]
            if nb == 1.0:
                cal[bucket, 0] = x
                cal[bucket, 1] = 0.0
            else:
                cal[bucket, 0] += ab * d
                cal[bucket, 1] = (1.0 - ab) * (cal[bucket, 1] + ab * d * d)
            if cal[bucket, 3] == 0.0 or cal[bucket, 4] != dayf:
                cal[bucket, 3] += 1.0
                cal[bucket, 4] = dayf
        for k in range(orders - 1, 0, -1):
            hist[k] = hist[k - 1]
        hist[0] = sym
        n += 1
        ist[I_N] = n

        # ---- per channel: short (ring) and slow (EW) averages of the raw
        #      surprise, each scored by its upper-tail likelihood against its
        #      own long-run mean/std; the score is the strongest of them ----
        stat = n > skip
        if stat:
            ist[I_NSTAT] += 1
        best = 0.0       # largest z of the channel statistics
        nscored = 0
        fs[F_WHY] = -1.0
        for c in range(NCH):
            base = F_CH + F_STRIDE * c
            if not active[c] or not (chmask >> c) & 1:
                continue
            r = raw[c]
            fs[base] = r
            cn = fs[base + 7] + 1.0
            fs[base + 7] = cn
            ring[c, int(cn - 1.0) % navg] = r
            cnt = int(cn) if cn < navg else navg
            s = 0.0
            for j in range(cnt):
                s += ring[c, j]
            fs[base + 1] = s / cnt
            if beta > 0.0:
                fs[base + 4] = r if cn == 1.0 else fs[base + 4] + beta * (r - fs[base + 4])
            if not stat:
                continue
            m = fs[base + 8]
            a = 1.0 / (m + 1.0)
            a = max(a, alpha_min)
            fs[base + 8] = m + 1.0
            for off in range(1, 5, 3):
                if (off == 4 and beta == 0.0) or (off == 1 and not use_short):
                    continue
                avg = fs[base + off]
                if m >= minstat:
                    mean = fs[base + off + 1]
                    mean = max(mean, mean_floor)
                    var = fs[base + off + 2]
                    std = math.sqrt(var) if var > 0.0 else 0.0
                    std = max(std, std_floor)
                    z = (avg - mean) / std
                    nscored += 1
                    if z > best:
                        best = z
                        fs[F_WHY] = 2 * c + (0 if off == 1 else 1)
                # fold the sample in after scoring it (no self-influence)
                if m == 0.0:
                    fs[base + off + 1] = avg
                    fs[base + off + 2] = 0.0
                else:
                    d = avg - fs[base + off + 1]
                    fs[base + off + 1] += a * d
                    fs[base + off + 2] = (1.0 - a) * (fs[base + off + 2] + a * d * d)
        ready = ist[I_NSTAT] > minstat
        # ---- calibrate the largest z against this stream's own recent
        #      history: tail = (recent exceedances + prior_n * Bonferroni
        #      Gaussian tail) / prior_n, exceedances decaying with horizon
        #      `calib`.  A stream whose statistics often run that high needs
        #      more to alarm than a quiet one; in effect an alarm must beat
        #      what the stream did recently ---------------------------------
        score = 0.0
        if ready and nscored > 0:
            zb = int(best / _ZSTEP) if best > 0.0 else 0
            if zb >= zh.shape[0]:
                zb = zh.shape[0] - 1
            exceed = 0.0
            for j in range(zb, zh.shape[0]):
                exceed += zh[j]
            exceed /= fs[F_ZN]           # histogram holds counts * scale
            q = nscored * 0.5 * math.erfc(best / _SQRT2)
            tail = (exceed + prior_n * q) / prior_n
            tail = min(tail, 1.0)
            score = _log_score(1.0 - tail)
            # count this point with weight `scale`; the scale grows by
            # 1/(1 - 1/calib) per point, which decays older counts lazily
            scale = fs[F_ZN] / (1.0 - 1.0 / calib)
            zh[zb] += scale
            if scale > 1e200:
                for j in range(zh.shape[0]):
                    zh[j] /= scale
                scale = 1.0
            fs[F_ZN] = scale
        fs[F_SCORE] = score

        # ---- hold-off: after an alarm stay quiet for `hold` points unless
        #      the evidence grows ----------------------------------------------
        if ist[I_QUIET] > 0:
            ist[I_QUIET] -= 1
            if score > fs[F_LEVEL]:
                fs[F_LEVEL] = score
                ist[I_QUIET] = hold
            else:
                score = 0.0
        elif score >= arm and hold > 0:
            fs[F_LEVEL] = score
            ist[I_QUIET] = hold

        # ---- out-of-range channel: 1.0, held per direction ---------------
        if ist[I_QHI] > 0:
            ist[I_QHI] -= 1
        if ist[I_QLO] > 0:
            ist[I_QLO] -= 1
        if ready and sp_dir != 0:
            qi = I_QHI if sp_dir > 0 else I_QLO
            if ist[qi] == 0:
                score = 1.0
                ist[qi] = hold
                ist[I_QUIET] = hold
                fs[F_LEVEL] = 1.0

        out[i] = score
