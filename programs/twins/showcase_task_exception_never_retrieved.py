import asyncio

async def fails():
    print("fails: raising")
    raise Exception("lost error")

async def main():
    t = asyncio.create_task(fails())
    await asyncio.sleep(0.010)
    print("main done")

asyncio.run(main())
