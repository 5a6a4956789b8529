// bench: promise_chain — twin of promise_chain.lab. 1,000,000 chained
// native promise reactions, built first, then run as each one settles.
async function chain(n) {
  let p = Promise.resolve(0);
  for (let i = 0; i < n; i++) {
    p = p.then(function (v) { return v + 1; });
  }
  return await p;
}
(async function main() {
  console.log(await chain(1000000));
})();
