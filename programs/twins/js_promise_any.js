const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function delayed(name, ms, ok) {
    await sleep(ms);
    console.log(name, "settles");
    if (ok) { return name; }
    throw name + " failed";
}
async function main() {
    const any1 = Promise.any([delayed("fails fast", 5, false), delayed("ok", 15, true), delayed("ok slower", 45, true)]);
    const any2 = Promise.any([delayed("y", 35, false), delayed("x", 25, false)]);
    const first = await any1;
    console.log("any:", first);
    try {
        await any2;
    } catch (e) {
        console.log("all rejected:", e.errors);
    }
}
main();
