const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function late() {
    console.log("late: first step");
    try {
        await sleep(10);
        console.log("late: woke up");
    } finally {
        console.log("late: finally");
    }
}
console.log("main: spawning and returning");
const t = late();
