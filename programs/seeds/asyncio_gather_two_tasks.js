// looplab's gather(a, b) under js is Promise.all([a, b]); delays in ms.
const sleep = (ms) => new Promise(r => setTimeout(r, ms));

async function task(name, delay) {
    console.log(`${name} started`);
    await sleep(delay);
    console.log(`${name} finished`);
}

async function main() {
    await Promise.all([
        task("Task 1", 3000),
        task("Task 2", 1000)
    ]);
}
main();
