const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function worker(name) {
    console.log(name, "step 1");
    await sleep(0);
    console.log(name, "step 2");
}
async function main() {
    const a = worker("a");
    const b = worker("b");
    const c = worker("c");
    console.log("main: tasks created");
    await sleep(0);
    console.log("main: after sleep(0)");
    await a;
    await b;
    await c;
    console.log("main: done");
}
main();
