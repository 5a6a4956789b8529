console.log([1, 2, 3, 4, 5, 6, 7]);
console.log([1, 2, 3, 4, 5, 6]);
let xs = [];
for (let i = 0; i < 30; i++) xs.push(i * 37 % 101);
console.log(xs);
console.log(["apple", "banana", "cherry", "date", "elderberry", "fig", "grape", "kiwi"]);
console.log({id: 42, username: "dev_explorer", role: "admin", email: "dev@example.com", active: true});
console.log([[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11, 12], [13, 14]]);
console.log({a: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], b: "x"});
