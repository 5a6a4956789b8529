setTimeout(() => {
    setTimeout(() => { console.log("timeout 0 (next timers phase)"); }, 0);
    setImmediate(() => { console.log("immediate (this iteration's check phase)"); });
    console.log("timer");
}, 10);
