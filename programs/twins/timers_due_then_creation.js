const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function main() {
    setTimeout(() => { console.log("45ms"); }, 45);
    setTimeout(() => { console.log("15ms a"); }, 15);
    setTimeout(() => { console.log("0ms"); }, 0);
    setTimeout(() => { console.log("15ms b"); }, 15);
    setTimeout(() => { console.log("30ms"); }, 30);
    await sleep(50);
}
main();
