import asyncio

async def worker(name):
    print(name, "step 1")
    await asyncio.sleep(0)
    print(name, "step 2")

async def main():
    a = asyncio.create_task(worker("a"))
    b = asyncio.create_task(worker("b"))
    c = asyncio.create_task(worker("c"))
    print("main: tasks created")
    await asyncio.sleep(0)
    print("main: after sleep(0)")
    await a
    await b
    await c
    print("main: done")

asyncio.run(main())
