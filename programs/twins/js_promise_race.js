const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function delayed(name, ms, ok) {
    await sleep(ms);
    console.log(name, "settles");
    if (ok) { return name; }
    throw name + " failed";
}
async function main() {
    const race1 = Promise.race([delayed("slow", 35, true), delayed("fast", 5, true)]);
    const race2 = Promise.race([delayed("ok later", 50, true), delayed("fails first", 20, false)]);
    const winner = await race1;
    console.log("race won by", winner);
    try {
        await race2;
    } catch (e) {
        console.log("race rejected:", e);
    }
}
main();
