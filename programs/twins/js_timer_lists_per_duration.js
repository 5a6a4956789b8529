function work(ms) { const end = Date.now() + ms; while (Date.now() < end) {} }
setTimeout(() => { console.log("A (30 ms, set at 0)"); }, 30);
setTimeout(() => { console.log("B (10 ms, set at 0)"); }, 10);
work(50);
setTimeout(() => { console.log("C (10 ms, set at 50)"); }, 10);
work(20);
console.log("script ends at 70 ms");
