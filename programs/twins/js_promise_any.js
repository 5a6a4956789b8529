const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function delayed(name, ms, ok) {
    await sleep(ms);
    console.log(name, "settles");
    if (ok) { return name; }
    throw name + " failed";
}
async function main() {
    const first = await Promise.any([delayed("fails fast", 5, false), delayed("ok", 15, true), delayed("ok slower", 40, true)]);
    console.log("any:", first);
    try {
        await Promise.any([delayed("y", 10, false), delayed("x", 5, false)]);
    } catch (e) {
        console.log("all rejected:", e.errors);
    }
}
main();
