const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function delayed(name, ms, ok) {
    await sleep(ms);
    console.log(name, "settles");
    if (ok) { return name; }
    throw name + " failed";
}
async function main() {
    const winner = await Promise.race([delayed("slow", 30, true), delayed("fast", 10, true)]);
    console.log("race won by", winner);
    try {
        await Promise.race([delayed("ok later", 25, true), delayed("fails first", 5, false)]);
    } catch (e) {
        console.log("race rejected:", e);
    }
}
main();
