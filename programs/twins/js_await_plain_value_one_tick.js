function tick(n) { console.log("tick", n); if (n < 5) { queueMicrotask(() => { tick(n + 1); }); } }
queueMicrotask(() => { tick(1); });
async function f() {
    console.log("f: await 42");
    const v = await 42;
    console.log("f: resumed with", v);
}
f();
