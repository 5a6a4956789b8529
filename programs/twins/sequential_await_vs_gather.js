const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function job(name, ms) {
    console.log(name, "start");
    await sleep(ms);
    console.log(name, "end");
}
async function main() {
    console.log("sequential:");
    await job("a", 30);
    await job("b", 10);
    await job("c", 20);
    console.log("gathered:");
    await Promise.all([job("a", 45), job("b", 15), job("c", 30)]);
    console.log("done");
}
main();
