import asyncio

async def worker(name):
    try:
        print(name, "started")
        await asyncio.sleep(1)
        print(name, "finished")
    finally:
        print(name, "finally")

async def main():
    a = asyncio.create_task(worker("a"))
    b = asyncio.create_task(worker("b"))
    c = asyncio.create_task(worker("c"))
    await asyncio.sleep(0.010)
    print("main returns")

asyncio.run(main())
