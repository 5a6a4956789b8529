import asyncio

async def job(name):
    print(name, "start")
    await asyncio.sleep(0.010)
    print(name, "end")
    return name

async def main():
    g = asyncio.gather(job("a"), job("b"))
    print("gather created")
    r = await g
    print(r)

asyncio.run(main())
