#!/usr/bin/env python3
"""Differential fuzzing of looplab's asyncio policy against real python3.

Generates random event-loop programs as a looplab `.lab` and a python3 twin from
the same random tree, runs both, and reports programs whose stdout differs
(kept in $FUZZ_DIR as bad*/pbad* for a look). Usage, from the repository root
after `cargo build --release`:

    python3 tests/twins/fuzz_py.py SEED COUNT

A mismatch is not always a looplab bug: timers created at different wall-clock
moments can legitimately reorder in the real runtime, more so on a busy
machine. So a mismatching python run is repeated up to three times, and a
program where any rerun prints what looplab printed counts as a timing flake,
not a mismatch. Rerun a saved twin a few times before trusting it. A python
run that hangs (a task re-acquiring the lock it holds: real asyncio has no
deadlock detection, looplab reports the deadlock) is skipped and kept as
hung*.

Known remaining difference: which of several pending tasks asyncio.run's
shutdown cancels first follows CPython's set of tasks (hashed by address);
looplab's chooser takes creation order, so a program whose output depends on
that order can differ (seen once in 900 programs).

The programs use call_soon/call_later callbacks (some raising), tasks,
sleeps, gather, try/except/finally, cancellation, and asyncio's library: a
shared `Queue` (unbounded or bounded: put/get under wait_for, put_nowait),
`wait_for` (0, 15 and 45 ms), `shield`, self-cancellation
(`current_task().cancel()`, seen through finally and `cancelling()`), a shared
`Lock` (acquire / finally release) and `Event` (wait under wait_for, set), and
`TaskGroup` (as `task_group`).
"""
import os, random, subprocess, sys, tempfile
seed = int(sys.argv[1]); count = int(sys.argv[2])
WORK = os.environ.get('FUZZ_DIR') or tempfile.mkdtemp(prefix='looplab-fuzz-')
LAB = os.environ.get('LOOPLAB', os.path.join(os.path.dirname(__file__), '..', '..', 'target', 'release', 'looplab'))
class G:
    def __init__(self, rng):
        self.rng = rng; self.n = 0; self.cbs = []; self.coros = []
    def label(self):
        self.n += 1; return f"L{self.n}"
    def block(self, depth, in_coro):
        return [self.stmt(depth, in_coro) for _ in range(self.rng.randint(1, 3))]
    def stmt(self, depth, in_coro):
        r = self.rng.random()
        if depth > 2 or r < 0.3: return ('log', self.label())
        if r < 0.45: return ('soon', self.cb(depth))
        if r < 0.55: return ('later', self.cb(depth), self.rng.choice([0, 0, 30, 60]))
        if r < 0.7 and self.coros: return ('task', self.rng.randrange(len(self.coros)))
        if in_coro and self.rng.random() < 0.35:
            # asyncio's library: a shared queue (bounded or not), wait_for,
            # self-cancellation (seen through finally: catching by kind is
            # not in the language yet).
            r3 = self.rng.random()
            if r3 < 0.25: return ('qput', self.label())
            if r3 < 0.45: return ('qget', self.label(), self.rng.choice([15, 45]))
            if r3 < 0.55: return ('qput_nowait', self.label())
            if r3 < 0.8 and self.coros: return ('wait_for', self.rng.randrange(len(self.coros)), self.rng.choice([0, 15, 45]), self.label())
            if r3 < 0.9: return ('self_cancel', self.block(depth + 1, True), self.label())
            if self.coros: return ('shield', self.rng.randrange(len(self.coros)), self.label())
        if in_coro and self.rng.random() < 0.3:
            # A shared lock and event, and a task group.
            r4 = self.rng.random()
            if r4 < 0.3: return ('locked', self.block(depth + 1, True), self.label())
            if r4 < 0.55: return ('ev_wait', self.label())
            if r4 < 0.75: return ('ev_set', self.label())
            if len(self.coros) >= 2: return ('group', self.rng.sample(range(len(self.coros)), 2), self.label())
        if in_coro:
            r2 = self.rng.random()
            if r2 < 0.3: return ('sleep', self.rng.choice([0, 0, 30]))
            if r2 < 0.55 and self.coros: return ('await_coro', self.rng.randrange(len(self.coros)))
            if r2 < 0.75 and len(self.coros) >= 2: return ('gather', self.rng.sample(range(len(self.coros)), 2))
            if r2 < 0.82: return ('try_finally', self.block(depth + 1, True), self.label())
            if r2 < 0.9 and self.coros: return ('try_except', self.rng.randrange(len(self.coros)), self.label())
            if r2 < 0.93: return ('raise',)
            if r2 < 0.965 and self.coros: return ('spawn_await', self.rng.randrange(len(self.coros)), self.label())
            if self.coros: return ('spawn_cancel', self.rng.randrange(len(self.coros)), self.rng.choice([0, 0, 30]), self.label())
        elif r >= 0.7 and r < 0.8:
            # A callback (call_soon / call_later) that raises: CPython logs
            # "Exception in callback" and the loop goes on. (Drawn from the
            # same `r`, so a seed gives the same tree shape as before.)
            return ('raise',)
        return ('log', self.label())
    def cb(self, depth):
        k = len(self.cbs); self.cbs.append(None)
        self.cbs[k] = self.block(depth + 1, False)
        return k
def py(s, ind):
    p = '    ' * ind; k = s[0]
    if k == 'log': return [f'{p}print("{s[1]}")']
    if k == 'soon': return [f'{p}loop.call_soon(cb{s[1]})']
    if k == 'later': return [f'{p}loop.call_later({s[2]} / 1000, cb{s[1]})']
    if k == 'task': return [f'{p}asyncio.create_task(co{s[1]}())']
    if k == 'sleep': return [f'{p}await asyncio.sleep({s[1]} / 1000)']
    if k == 'await_coro': return [f'{p}await co{s[1]}()']
    if k == 'gather': return [f'{p}await asyncio.gather(co{s[1][0]}(), co{s[1][1]}())']
    if k == 'try_except':
        return [f'{p}try:', f'{p}    await co{s[1]}()', f'{p}except Exception as e:', f'{p}    print("{s[2]}", e)']
    if k == 'raise': return [f'{p}raise Exception("E")']
    if k == 'spawn_await':
        return [f'{p}t = asyncio.create_task(co{s[1]}())', f'{p}try:', f'{p}    await t', f'{p}except Exception as e:', f'{p}    print("{s[2]}", e)']
    if k == 'spawn_cancel':
        return [f'{p}t = asyncio.create_task(co{s[1]}())', f'{p}await asyncio.sleep({s[2]} / 1000)', f'{p}print("{s[3]}", t.cancel())']
    if k == 'qput':
        return [f'{p}try:', f'{p}    await asyncio.wait_for(q.put("{s[1]}"), 0.045)', f'{p}    print("{s[1]} put", q.qsize())',
                f'{p}except Exception as e:', f'{p}    print("{s[1]}", type(e).__name__)']
    if k == 'qget':
        return [f'{p}try:', f'{p}    print("{s[1]}", await asyncio.wait_for(q.get(), {s[2]} / 1000))',
                f'{p}except Exception as e:', f'{p}    print("{s[1]}", type(e).__name__)']
    if k == 'qput_nowait':
        return [f'{p}try:', f'{p}    q.put_nowait("{s[1]}")', f'{p}except Exception as e:', f'{p}    print("{s[1]}", type(e).__name__)']
    if k == 'wait_for':
        return [f'{p}try:', f'{p}    print("{s[3]}", await asyncio.wait_for(co{s[1]}(), {s[2]} / 1000))',
                f'{p}except Exception as e:', f'{p}    print("{s[3]}", type(e).__name__)']
    if k == 'shield':
        return [f'{p}print("{s[2]}", await asyncio.shield(co{s[1]}()))']
    if k == 'locked':
        out = [f'{p}await lk.acquire()', f'{p}try:']
        for x in s[1]: out += py(x, ind + 1)
        out += [f'{p}finally:', f'{p}    lk.release()', f'{p}    print("{s[2]}", lk.locked())']
        return out
    if k == 'ev_wait':
        return [f'{p}try:', f'{p}    print("{s[1]}", await asyncio.wait_for(ev.wait(), 0.015))',
                f'{p}except Exception as e:', f'{p}    print("{s[1]}", type(e).__name__)']
    if k == 'ev_set': return [f'{p}print("{s[1]}", ev.is_set())', f'{p}ev.set()']
    if k == 'group':
        return [f'{p}try:', f'{p}    async with asyncio.TaskGroup() as g:', f'{p}        g.create_task(co{s[1][0]}())', f'{p}        g.create_task(co{s[1][1]}())',
                f'{p}    print("{s[2]}")', f'{p}except Exception as e:', f'{p}    print("{s[2]}", type(e).__name__)']
    if k == 'self_cancel':
        out = [f'{p}asyncio.current_task().cancel()', f'{p}try:']
        for x in s[1]: out += py(x, ind + 1)
        out += [f'{p}finally:', f'{p}    print("{s[2]}", asyncio.current_task().cancelling())']
        return out
    if k == 'try_finally':
        out = [f'{p}try:']
        for x in s[1]: out += py(x, ind + 1)
        out += [f'{p}finally:', f'{p}    print("{s[2]}")']
        return out
# What python's type(e).__name__ prints: a thrown string stands for Exception("E").
KIND = '(type_of(e) == "error" && e.kind) || "Exception"'
def lab(s, ind):
    p = '    ' * ind; k = s[0]
    if k == 'log': return [f'{p}print("{s[1]}");']
    if k == 'soon': return [f'{p}queue_microtask(cb{s[1]});']
    if k == 'later': return [f'{p}set_timeout(cb{s[1]}, {s[2]});']
    if k == 'task': return [f'{p}spawn co{s[1]}();']
    if k == 'sleep': return [f'{p}await sleep({s[1]});']
    if k == 'await_coro': return [f'{p}await co{s[1]}();']
    if k == 'gather': return [f'{p}await gather(co{s[1][0]}(), co{s[1][1]}());']
    if k == 'try_except':
        return [f'{p}try {{ await co{s[1]}(); }} catch e {{ print("{s[2]}", e); }}']
    if k == 'raise': return [f'{p}throw "E";']
    if k == 'spawn_await':
        return [f'{p}let t = spawn co{s[1]}();', f'{p}try {{ await t; }} catch e {{ print("{s[2]}", e); }}']
    if k == 'spawn_cancel':
        return [f'{p}let t = spawn co{s[1]}();', f'{p}await sleep({s[2]});', f'{p}print("{s[3]}", t.cancel());']
    if k == 'qput':
        return [f'{p}try {{ await wait_for(q.put("{s[1]}"), 45); print("{s[1]} put", q.qsize()); }} catch e {{ print("{s[1]}", {KIND}); }}']
    if k == 'qget':
        return [f'{p}try {{ print("{s[1]}", await wait_for(q.get(), {s[2]})); }} catch e {{ print("{s[1]}", {KIND}); }}']
    if k == 'qput_nowait':
        return [f'{p}try {{ q.put_nowait("{s[1]}"); }} catch e {{ print("{s[1]}", {KIND}); }}']
    if k == 'wait_for':
        return [f'{p}try {{ print("{s[3]}", await wait_for(co{s[1]}(), {s[2]})); }} catch e {{ print("{s[3]}", {KIND}); }}']
    if k == 'shield':
        return [f'{p}print("{s[2]}", await shield(co{s[1]}()));']
    if k == 'locked':
        out = [f'{p}await lk.acquire();', f'{p}try {{']
        for x in s[1]: out += lab(x, ind + 1)
        out += [f'{p}}} finally {{', f'{p}    lk.release();', f'{p}    print("{s[2]}", lk.locked());', f'{p}}}']
        return out
    if k == 'ev_wait':
        return [f'{p}try {{ print("{s[1]}", await wait_for(ev.wait(), 15)); }} catch e {{ print("{s[1]}", {KIND}); }}']
    if k == 'ev_set': return [f'{p}print("{s[1]}", ev.is_set());', f'{p}ev.set();']
    if k == 'group':
        return [f'{p}try {{', f'{p}    await task_group(async fn(g) {{ g.create_task(co{s[1][0]}()); g.create_task(co{s[1][1]}()); }});',
                f'{p}    print("{s[2]}");', f'{p}}} catch e {{ print("{s[2]}", {KIND}); }}']
    if k == 'self_cancel':
        out = [f'{p}current_task().cancel();', f'{p}try {{']
        for x in s[1]: out += lab(x, ind + 1)
        out += [f'{p}}} finally {{', f'{p}    print("{s[2]}", current_task().cancelling());', f'{p}}}']
        return out
    if k == 'try_finally':
        out = [f'{p}try {{']
        for x in s[1]: out += lab(x, ind + 1)
        out += [f'{p}}} finally {{', f'{p}    print("{s[2]}");', f'{p}}}']
        return out
rng = random.Random(seed); bad = 0; logged = 0; hung = 0; flaky = 0
for case in range(count):
    g = G(rng)
    coro_bodies = []
    for k in range(rng.randint(1, 4)):
        body = g.block(0, True)
        g.coros.append(body)
    main = g.block(0, True) + [('task', i) for i in range(len(g.coros)) if rng.random() < 0.5]
    rng.shuffle(main)
    maxsize = rng.choice([0, 1, 2])
    P = ['import asyncio', 'loop = None', 'q = None', 'lk = None', 'ev = None']
    L = [f'let q = queue({maxsize});', 'let lk = lock();', 'let ev = event();']
    for k, body in enumerate(g.cbs):
        P.append(f'def cb{k}():'); L.append(f'fn cb{k}() {{')
        for x in body: P += py(x, 1); L += lab(x, 1)
        L.append('}')
    for k, body in enumerate(g.coros):
        P.append(f'async def co{k}():'); L.append(f'async fn co{k}() {{')
        for x in body: P += py(x, 1); L += lab(x, 1)
        L.append('}')
    P += ['async def main():', '    global loop, q, lk, ev', '    loop = asyncio.get_running_loop()', f'    q = asyncio.Queue({maxsize})',
          '    lk = asyncio.Lock()', '    ev = asyncio.Event()']
    for x in main: P += py(x, 1); L += lab(x, 0)
    P.append('asyncio.run(main())')
    open(f'{WORK}/c.py', 'w').write('\n'.join(P) + '\n'); open(f'{WORK}/c2.lab', 'w').write('\n'.join(L) + '\n')
    try:
        a = subprocess.run(['python3', f'{WORK}/c.py'], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        # Real asyncio has no deadlock detection (a lock held around a
        # TaskGroup whose task wants it waits forever); looplab reports one.
        hung += 1
        open(f'{WORK}/hung{hung}.py', 'w').write('\n'.join(P) + '\n'); open(f'{WORK}/hung{hung}.lab', 'w').write('\n'.join(L) + '\n')
        continue
    b = subprocess.run([LAB, 'run', f'{WORK}/c2.lab', '--runtime', 'asyncio'], capture_output=True, text=True, timeout=30)
    logged += 'Exception in callback' in a.stderr
    same = lambda a: a.stdout == b.stdout and (a.returncode != 0) == (b.returncode != 0)
    if not same(a):
        # A busy machine can reorder python's timers: rerun it; if it ever
        # prints what looplab printed, count a timing flake, not a mismatch.
        if any(same(subprocess.run(['python3', f'{WORK}/c.py'], capture_output=True, text=True, timeout=30)) for _ in range(3)):
            flaky += 1
            continue
        bad += 1
        open(f'{WORK}/pbad{bad}.py', 'w').write('\n'.join(P) + '\n'); open(f'{WORK}/pbad{bad}.lab', 'w').write('\n'.join(L) + '\n')
        print('MISMATCH', bad, 'python:', a.stdout.split(), a.returncode, 'looplab:', b.stdout.split(), b.returncode, b.stderr[:300])
        if bad >= 5: break
print('cases', case + 1, 'mismatches', bad, '(python logged "Exception in callback" in', logged, 'of them;', hung, 'python runs hung and were skipped;',
      flaky, 'timing flakes: a python rerun printed what looplab printed)')
