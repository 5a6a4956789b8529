function work(ms) { const end = Date.now() + ms; while (Date.now() < end) {} }
setTimeout(() => {
    console.log("A (10 ms) starts 30 ms of work");
    work(30);
    setTimeout(() => { console.log("C (5 ms, set at the end of A)"); }, 5);
    Promise.resolve().then(() => { console.log("promise from A"); });
    console.log("A ends");
}, 10);
setTimeout(() => { console.log("B (20 ms) runs late, after A"); }, 20);
