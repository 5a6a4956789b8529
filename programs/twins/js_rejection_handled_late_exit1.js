const p = Promise.reject("late");
setTimeout(() => {
    p.catch((e) => { console.log("caught too late:", e); });
}, 0);
console.log("script end");
