function work(ms) { const end = Date.now() + ms; while (Date.now() < end) {} }
let n = 0;
let id = 0;
id = setInterval((label) => {
    n = n + 1;
    console.log(label, n);
    if (n == 1) { work(25); }
    if (n == 3) { clearInterval(id); console.log("cleared"); }
}, 30, "tick");
setTimeout(() => { console.log("timeout 70 ms"); }, 70);
setTimeout(() => { console.log("timeout 150 ms: no more ticks"); }, 150);
