const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function player(name) {
    for (let i = 0; i < 3; i++) {
        console.log(name, i);
        await sleep(0);
    }
}
async function main() {
    await Promise.all([player("ping"), player("pong")]);
}
main();
