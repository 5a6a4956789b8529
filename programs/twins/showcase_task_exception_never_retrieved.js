const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function fails() {
    console.log("fails: raising");
    throw "lost error";
}
async function main() {
    const t = fails();
    await sleep(10);
    console.log("main done");
}
main();
