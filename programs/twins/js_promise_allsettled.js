const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function delayed(name, ms, ok) {
    await sleep(ms);
    console.log(name, "settles");
    if (ok) { return name; }
    throw name + " failed";
}
async function main() {
    const results = await Promise.allSettled([delayed("a", 40, true), delayed("b", 10, false), 42]);
    for (const r of results) { console.log(r); }
}
main();
