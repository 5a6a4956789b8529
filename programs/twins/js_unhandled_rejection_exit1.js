setTimeout(() => { console.log("timer never runs"); }, 10);
Promise.reject("boom");
Promise.resolve().then(() => { console.log("microtask still runs"); });
console.log("sync end");
