const p = Promise.resolve("settled");
console.log("registered");
p.then((v) => { console.log("then 1:", v); });
p.then((v) => { console.log("then 2:", v); });
console.log("after then");
setTimeout(() => {
    p.then((v) => { console.log("then from timer 1:", v); });
    console.log("timer 1 ends");
}, 0);
setTimeout(() => { console.log("timer 2"); }, 0);
