import asyncio

async def task(name):
    print(name, "step 1")
    await asyncio.sleep(0)
    print(name, "step 2")

async def main():
    loop = asyncio.get_running_loop()
    loop.call_soon(lambda: print("cb 1"))
    t = asyncio.create_task(task("T"))
    loop.call_soon(lambda: print("cb 2"))
    await asyncio.sleep(0)
    print("main resumed")
    await t

asyncio.run(main())
