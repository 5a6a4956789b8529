// bench: sleep0_steps — twin of sleep0_steps.lab: one async function awaiting
// a zero-delay turn 1,000,000 times. Not a literal translation: node clamps
// setTimeout(fn, 0) to 1 ms (a literal twin would wait ~20 minutes), so each
// step awaits a setImmediate promise, node's nearest zero-delay event-loop turn.
function turn() {
  return new Promise(function (resolve) { setImmediate(resolve); });
}
async function steps(n) {
  let k = 0;
  for (let i = 0; i < n; i++) {
    await turn();
    k = k + 1;
  }
  return k;
}
(async function main() {
  console.log(await steps(1000000));
})();
