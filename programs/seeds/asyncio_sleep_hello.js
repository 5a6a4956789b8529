async function main() {
    await new Promise(r => setTimeout(r, 1000));
    console.log("Hello");
}
main();
