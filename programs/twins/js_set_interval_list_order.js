let runs = 0;
let id = 0;
id = setInterval(() => {
    runs = runs + 1;
    console.log("I run", runs);
    if (runs == 1) { setTimeout(() => { console.log("U (20 ms, set inside I)"); }, 20); }
    if (runs == 2) { clearInterval(id); }
}, 20);
setTimeout(() => { console.log("T (20 ms, set after I)"); }, 20);
