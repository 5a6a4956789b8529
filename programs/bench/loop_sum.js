// bench: loop_sum — twin of loop_sum.lab. A while loop summing 0..10,000,000
// inside a function. The sum (49999995000000) is below 2^53, so JS numbers
// hold it exactly.
function sumTo(n) {
  let s = 0;
  let i = 0;
  while (i < n) {
    s = s + i;
    i = i + 1;
  }
  return s;
}
console.log(sumTo(10000000));
