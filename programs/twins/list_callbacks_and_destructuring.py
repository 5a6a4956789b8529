import asyncio
from functools import cmp_to_key, reduce
async def main():
    xs = [5, 3, 8, 1, 9, 2]
    doubled = list(map(lambda x: x * 2, xs))
    big = [x for x in xs if x > 4]
    print(" ".join(str(x) for x in doubled), " ".join(str(x) for x in big))
    print(next((x for x in xs if x > 6), None), any(x == 1 for x in xs), all(x < 9 for x in xs))
    total = reduce(lambda acc, x: acc + x, xs, 0)
    longest = reduce(lambda best, w: w if len(w) > len(best) else best, ["fig", "banana", "kiwi"])
    print(total, longest)
    people = [{"name": "ann", "age": 31}, {"name": "bob", "age": 25}, {"name": "cy", "age": 31}, {"name": "di", "age": 25}]
    people.sort(key=cmp_to_key(lambda a, b: a["age"] - b["age"]))
    print(",".join(p["name"] for p in people))
    first, second = people[0], people[1]
    name, age = first["name"], first["age"]
    print(f"first: {name} ({age}), second: {second['name']}")
    score = 10
    score += 5
    score *= 2
    score -= 6
    counts = {"hits": 0}
    for x in xs:
        counts["hits"] += x
    grid = [1, 2, 3]
    grid[1] *= 10
    print(f"score {score}, hits {counts['hits']}, grid {grid[0]}-{grid[1]}-{grid[2]}")
    async def slow_square(x):
        await asyncio.sleep(x * 0.04)
        print("squared", x)
        return x * x
    a, b, c = await asyncio.gather(*map(slow_square, [3, 1, 2]))
    print(f"results {a} {b} {c}")
asyncio.run(main())
