const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function main() {
    let b = undefined;
    setTimeout(() => { console.log("A fires and cancels B"); clearTimeout(b); }, 10);
    b = setTimeout(() => { console.log("B never fires"); }, 20);
    setTimeout(() => { console.log("C fires"); }, 30);
    await sleep(40);
}
main();
