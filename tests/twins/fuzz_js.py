#!/usr/bin/env python3
"""Differential fuzzing of looplab's js policy against real node.

Generates random event-loop programs as a looplab `.lab` and a node twin from
the same random tree, runs both, and reports programs whose stdout differs
(kept in $FUZZ_DIR as bad*/pbad* for a look). Usage, from the repository root
after `cargo build --release`:

    python3 tests/twins/fuzz_js.py SEED COUNT

A mismatch is not always a looplab bug: timers created at different wall-clock
moments can legitimately reorder in the real runtime. On a mismatch the
fuzzer reruns node (FUZZ_RERUNS times, default 4): if node's own output
varies and looplab printed one of node's outcomes, the program is counted as
racy, not as a mismatch. It stops after FUZZ_MAX_BAD (default 5) mismatches. A stable one
can still be a near-tie: Node's first macrotask and microtask drain take real
milliseconds (looplab charges 10 ns per instruction), so a timer Node created
"at 0" may be due a millisecond or two after one created later with a shorter
delay that lands on the same virtual millisecond. Check for such ties first.
The same goes for timers set while the script and its first microtask drain
run (Node's first `console.log` alone takes about a millisecond): Node starts
them at different whole milliseconds where looplab starts them all at 0, so a
later one can miss the first timers phase and run after the immediates. And
at the loop's start looplab takes the script's 0 ms timers to be due before
its immediates (REFERENCE §9); node usually agrees for a script that prints.
"""
import os, random, subprocess, sys, tempfile
seed = int(sys.argv[1]); count = int(sys.argv[2])
WORK = os.environ.get('FUZZ_DIR') or tempfile.mkdtemp(prefix='looplab-fuzz-')
LAB = os.environ.get('LOOPLAB', os.path.join(os.path.dirname(__file__), '..', '..', 'target', 'release', 'looplab'))
def gen(rng):
    n = [0]
    def label():
        n[0] += 1; return f"L{n[0]}"
    fns = []
    def block(depth, callback=False):
        out = []
        for _ in range(rng.randint(1, 3)):
            out.append(stmt(depth, callback))
        return out
    def stmt(depth, callback=False):
        r = rng.random()
        if depth > 2 or r < 0.35:
            # In a timer or queueMicrotask callback, some of these are a
            # throw: an uncaught exception, node exits 1 at once. (Drawn from
            # the same `r`, so a seed gives the same tree shape as before.)
            if callback and r < 0.05:
                return ('throw',)
            return ('log', label())
        # 2147483648 is past Node's TIMEOUT_MAX: a 1 ms timer (and a
        # TimeoutOverflowWarning on stderr, which is not compared).
        if r < 0.44: return ('timeout', block(depth + 1, True), rng.choice([0, 0, 25, 50, 2147483648]))
        # An interval cleared by its own callback after 1 to 3 runs (its
        # body is a timer callback: it may throw), and immediates (one of
        # them cleared at once).
        if r < 0.47: return ('interval', block(depth + 1, True), rng.choice([15, 35]), rng.randint(1, 3), label())
        if r < 0.495: return ('immediate', block(depth + 1, True))
        if r < 0.5: return ('immediate_cleared', label())
        if r < 0.62: return ('then', [block(depth + 1) for _ in range(rng.randint(1, 3))])
        if r < 0.72: return ('micro', block(depth + 1, True))
        if r < 0.80: return ('tick', block(depth + 1))
        if r < 0.86: return ('reject_chain', block(depth + 1), block(depth + 1), rng.random() < 0.5)
        if r < 0.90 and fns: return ('all', [rng.randrange(len(fns)) for _ in range(2)], block(depth + 1))
        if fns: return ('call', rng.randrange(len(fns)))
        return ('log', label())
    def async_body(k):
        body = []
        for _ in range(rng.randint(1, 4)):
            r = rng.random()
            if r < 0.4: body.append(('log', label()))
            elif r < 0.55: body.append(('await_value',))
            elif r < 0.7: body.append(('await_resolved',))
            elif r < 0.8: body.append(('await_sleep', rng.choice([0, 25])))
            elif r < 0.85 and k > 0: body.append(('await_call', rng.randrange(k)))
            elif r < 0.9 and k > 0: body.append(('try_await', rng.randrange(k), label()))
            elif r < 0.93: body.append(('throw',))
            else: body.append(stmt(1))
        ret = rng.choice(['none', 'value', 'promise', 'call']) if k > 0 else rng.choice(['none', 'value', 'promise'])
        return body, ret, (rng.randrange(k) if k > 0 else None)
    for k in range(rng.randint(0, 3)):
        fns.append(async_body(k))
    top = block(0) + [('call', i) for i in range(len(fns)) if rng.random() < 0.8]
    rng.shuffle(top)
    return fns, top
def js_stmt(s, ind):
    p = '  ' * ind
    k = s[0]
    if k == 'log': return f'{p}console.log("{s[1]}");'
    if k == 'timeout': return f'{p}setTimeout(() => {{\n' + '\n'.join(js_stmt(x, ind+1) for x in s[1]) + f'\n{p}}}, {s[2]});'
    if k == 'interval':
        n, i = f'n{s[4]}', f'i{s[4]}'
        return (f'{p}let {n} = 0;\n{p}const {i} = setInterval(() => {{\n{p}  {n} += 1;\n{p}  if ({n} >= {s[3]}) clearInterval({i});\n'
                + '\n'.join(js_stmt(x, ind+1) for x in s[1]) + f'\n{p}}}, {s[2]});')
    if k == 'immediate': return f'{p}setImmediate(() => {{\n' + '\n'.join(js_stmt(x, ind+1) for x in s[1]) + f'\n{p}}});'
    if k == 'immediate_cleared': return f'{p}clearImmediate(setImmediate(() => {{ console.log("never {s[1]}"); }}));'
    if k == 'then':
        chain = 'Promise.resolve()' + ''.join('.then(() => {\n' + '\n'.join(js_stmt(x, ind+1) for x in b) + f'\n{p}}})' for b in s[1])
        return p + chain + ';'
    if k == 'micro': return f'{p}queueMicrotask(() => {{\n' + '\n'.join(js_stmt(x, ind+1) for x in s[1]) + f'\n{p}}});'
    if k == 'tick': return f'{p}process.nextTick(() => {{\n' + '\n'.join(js_stmt(x, ind+1) for x in s[1]) + f'\n{p}}});'
    if k == 'call': return f'{p}f{s[1]}();'
    if k == 'await_value': return f'{p}await 1;'
    if k == 'await_resolved': return f'{p}await Promise.resolve();'
    if k == 'await_sleep': return f'{p}await new Promise(r => setTimeout(r, {s[1]}));'
    if k == 'await_call': return f'{p}await f{s[1]}();'
    if k == 'try_await': return f'{p}try {{ await f{s[1]}(); }} catch (e) {{ console.log("{s[2]}", e); }}'
    if k == 'throw': return f'{p}throw "E";'
    if k == 'reject_chain':
        fin = ('.finally(() => {\n' + '\n'.join(js_stmt(x, ind+1) for x in s[2]) + f'\n{p}}})') if s[3] else ''
        return f'{p}Promise.reject("R").then(() => {{ console.log("never"); }}).catch((e) => {{\n' + '\n'.join(js_stmt(x, ind+1) for x in s[1]) + f'\n{p}}})' + fin + ';'
    if k == 'all': return f'{p}Promise.all([f{s[1][0]}(), f{s[1][1]}()]).then(() => {{\n' + '\n'.join(js_stmt(x, ind+1) for x in s[2]) + f'\n{p}}}, (e) => {{ console.log("all rejected", e); }});'
def lab_stmt(s, ind):
    p = '  ' * ind
    k = s[0]
    if k == 'log': return f'{p}print("{s[1]}");'
    if k == 'timeout': return f'{p}set_timeout(fn() {{\n' + '\n'.join(lab_stmt(x, ind+1) for x in s[1]) + f'\n{p}}}, {s[2]});'
    if k == 'interval':
        n, i = f'n{s[4]}', f'i{s[4]}'
        return (f'{p}let {n} = 0;\n{p}let {i} = 0;\n{p}{i} = set_interval(fn() {{\n{p}  {n} = {n} + 1;\n{p}  if {n} >= {s[3]} {{ clear_interval({i}); }}\n'
                + '\n'.join(lab_stmt(x, ind+1) for x in s[1]) + f'\n{p}}}, {s[2]});')
    if k == 'immediate': return f'{p}set_immediate(fn() {{\n' + '\n'.join(lab_stmt(x, ind+1) for x in s[1]) + f'\n{p}}});'
    if k == 'immediate_cleared': return f'{p}clear_immediate(set_immediate(fn() {{ print("never {s[1]}"); }}));'
    if k == 'then':
        chain = 'Promise.resolve()' + ''.join('.then(fn() {\n' + '\n'.join(lab_stmt(x, ind+1) for x in b) + f'\n{p}}})' for b in s[1])
        return p + chain + ';'
    if k == 'micro': return f'{p}queue_microtask(fn() {{\n' + '\n'.join(lab_stmt(x, ind+1) for x in s[1]) + f'\n{p}}});'
    if k == 'tick': return f'{p}next_tick(fn() {{\n' + '\n'.join(lab_stmt(x, ind+1) for x in s[1]) + f'\n{p}}});'
    if k == 'call': return f'{p}f{s[1]}();'
    if k == 'await_value': return f'{p}await 1;'
    if k == 'await_resolved': return f'{p}await Promise.resolve();'
    if k == 'await_sleep': return f'{p}await sleep({s[1]});'
    if k == 'await_call': return f'{p}await f{s[1]}();'
    if k == 'try_await': return f'{p}try {{ await f{s[1]}(); }} catch e {{ print("{s[2]}", e); }}'
    if k == 'throw': return f'{p}throw "E";'
    if k == 'reject_chain':
        fin = ('.finally(fn() {\n' + '\n'.join(lab_stmt(x, ind+1) for x in s[2]) + f'\n{p}}})') if s[3] else ''
        return f'{p}Promise.reject("R").then(fn() {{ print("never"); }}).catch(fn(e) {{\n' + '\n'.join(lab_stmt(x, ind+1) for x in s[1]) + f'\n{p}}})' + fin + ';'
    if k == 'all': return f'{p}Promise.all([f{s[1][0]}(), f{s[1][1]}()]).then(fn() {{\n' + '\n'.join(lab_stmt(x, ind+1) for x in s[2]) + f'\n{p}}}, fn(e) {{ print("all rejected", e); }});'
def ret_js(ret, j):
    return {'none': '', 'value': '  return 7;', 'promise': '  return Promise.resolve(7);', 'call': f'  return f{j}();'}[ret]
def render(fns, top, stmt_fn, lang):
    out = []
    for k, (body, ret, j) in enumerate(fns):
        head = f'async function f{k}() {{' if lang == 'js' else f'async fn f{k}() {{'
        out.append(head)
        out += [stmt_fn(s, 1) for s in body]
        r = ret_js(ret, j)
        if r: out.append(r)
        out.append('}')
    out += [stmt_fn(s, 0) for s in top]
    return '\n'.join(out) + '\n'
rng = random.Random(seed)
bad = 0
racy = 0
# On a mismatch node reruns this many times; stop after MAX_BAD mismatches.
RERUNS = int(os.environ.get('FUZZ_RERUNS', '4'))
MAX_BAD = int(os.environ.get('FUZZ_MAX_BAD', '5'))
threw = 0
for case in range(count):
    fns, top = gen(rng)
    js = 'process.stdout.write("");\n' + render(fns, top, js_stmt, 'js'); lab = render(fns, top, lab_stmt, 'lab')
    open(f'{WORK}/c.js', 'w').write(js); open(f'{WORK}/c.lab', 'w').write(lab)
    node = subprocess.run(['node', f'{WORK}/c.js'], capture_output=True, text=True, timeout=30)
    a = node.stdout
    threw += 'throw "E"' in node.stderr  # node quotes the line of an uncaught throw
    b = subprocess.run([LAB, 'run', f'{WORK}/c.lab', '--runtime', 'js'], capture_output=True, text=True, timeout=30)
    if a != b.stdout or (node.returncode == 0) != (b.returncode == 0):
        # Rerun node: a program whose real output varies is a timing race
        # (a near-tie), not a looplab bug, when looplab prints one of the
        # outcomes node printed.
        outcomes = {(a, node.returncode == 0)}
        for _ in range(RERUNS):
            again = subprocess.run(['node', f'{WORK}/c.js'], capture_output=True, text=True, timeout=30)
            outcomes.add((again.stdout, again.returncode == 0))
        if len(outcomes) > 1 and (b.stdout, b.returncode == 0) in outcomes:
            racy += 1
            continue
        bad += 1
        open(f'{WORK}/bad{bad}.js', 'w').write(js); open(f'{WORK}/bad{bad}.lab', 'w').write(lab)
        print('MISMATCH', bad, 'node:', a.split(), 'looplab:', b.stdout.split(), b.stderr[:200],
              '(node varied over reruns)' if len(outcomes) > 1 else '(node stable over reruns)')
        if bad >= MAX_BAD: break
print('cases', case + 1, 'mismatches', bad, '(node died of an uncaught throw in', threw, 'of them);',
      racy, 'more where node itself varied and looplab printed one of its outcomes')
