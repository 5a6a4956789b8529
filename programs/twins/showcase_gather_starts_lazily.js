const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function job(name) {
    console.log(name, "start");
    await sleep(10);
    console.log(name, "end");
    return name;
}
async function main() {
    const g = Promise.all([job("a"), job("b")]);
    console.log("gather created");
    const r = await g;
    console.log(r);
}
main();
