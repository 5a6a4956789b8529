const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function delayed(name, ms, ok) {
    await sleep(ms);
    console.log(name, "settles");
    if (ok) { return name; }
    throw name + " failed";
}
async function main() {
    const r = await Promise.all([1, Promise.resolve(2), delayed("three", 10, true), "four"]);
    console.log(r);
}
main();
