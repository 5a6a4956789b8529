const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function main() {
    const xs = [5, 3, 8, 1, 9, 2];
    const doubled = xs.map((x) => x * 2);
    const big = xs.filter((x) => x > 4);
    console.log(doubled.join(" "), big.join(" "));
    console.log(xs.find((x) => x > 6), xs.some((x) => x == 1), xs.every((x) => x < 9));
    const total = xs.reduce((acc, x) => acc + x, 0);
    const longest = ["fig", "banana", "kiwi"].reduce((best, w) => { if (w.length > best.length) { return w; } return best; });
    console.log(total, longest);
    const people = [{name: "ann", age: 31}, {name: "bob", age: 25}, {name: "cy", age: 31}, {name: "di", age: 25}];
    people.sort((a, b) => a.age - b.age);
    console.log(people.map((p) => p.name).join(","));
    const [first, second] = people;
    const {name, age} = first;
    console.log(`first: ${name} (${age}), second: ${second.name}`);
    let score = 10;
    score += 5;
    score *= 2;
    score -= 6;
    const counts = {hits: 0};
    for (const x of xs) {
        counts.hits += x;
    }
    const grid = [1, 2, 3];
    grid[1] *= 10;
    console.log(`score ${score}, hits ${counts.hits}, grid ${grid[0]}-${grid[1]}-${grid[2]}`);
    async function slowSquare(x) {
        await sleep(x * 40);
        console.log("squared", x);
        return x * x;
    }
    const [a, b, c] = await Promise.all([3, 1, 2].map(slowSquare));
    console.log(`results ${a} ${b} ${c}`);
}
main();
