const p = new Promise((resolve, reject) => {
    console.log("executor runs now");
    resolve("first");
    resolve("second");
    reject("ignored");
    console.log("executor continues after resolve");
});
p.then((v) => { console.log("then:", v); });
console.log("after new Promise");
