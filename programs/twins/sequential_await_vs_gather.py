import asyncio

async def job(name, ms):
    print(name, "start")
    await asyncio.sleep(ms / 1000)
    print(name, "end")

async def main():
    print("sequential:")
    await job("a", 30)
    await job("b", 10)
    await job("c", 20)
    print("gathered:")
    await asyncio.gather(job("a", 45), job("b", 15), job("c", 30))
    print("done")

asyncio.run(main())
