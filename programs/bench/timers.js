// bench: timers — twin of timers.lab: 100,000 setTimeout(tick, i % 100) in the
// async main, then a 100 ms sleep (a promise resolved by a timer), then the
// count.
let count = 0;
function tick() {
  count = count + 1;
}
(async function main() {
  for (let i = 0; i < 100000; i++) {
    setTimeout(tick, i % 100);
  }
  await new Promise(function (resolve) { setTimeout(resolve, 100); });
  console.log(count);
})();
