const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function job(name, ms, fail) {
    await sleep(ms);
    if (fail) {
        console.log(name, "fails");
        throw name + " failed";
    }
    console.log(name, "ends");
    return name;
}
async function main() {
    try {
        const r = await Promise.all([job("a", 25, false), job("b", 10, true), job("c", 40, false)]);
        console.log("never:", r);
    } catch (e) {
        console.log("caught:", e);
    }
    await sleep(45);
    console.log("main done");
}
main();
