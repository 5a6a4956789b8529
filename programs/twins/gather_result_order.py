import asyncio

async def job(name, ms):
    print(name, "start")
    await asyncio.sleep(ms / 1000)
    print(name, "end")
    return name + " result"

async def main():
    results = await asyncio.gather(job("slow", 45), job("fast", 15), job("mid", 30))
    print(results)

asyncio.run(main())
