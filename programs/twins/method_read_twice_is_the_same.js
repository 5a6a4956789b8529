const xs = [1];
const push = xs.push;
console.log(xs.push === xs.push, push === xs.push, xs.push !== xs.push, xs.push === xs.pop, console.log === console.log);
console.log("ab".toUpperCase === "ab".toUpperCase, "ab".toUpperCase === "ab".toLowerCase);
