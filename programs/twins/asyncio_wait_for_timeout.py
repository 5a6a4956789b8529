import asyncio

def tick(n):
    print("tick", n)
    if n < 6:
        asyncio.get_running_loop().call_soon(tick, n + 1)

async def job(name, ms):
    try:
        await asyncio.sleep(ms / 1000)
        print(name, "finished")
        return name
    finally:
        print(name, "finally")

async def fails():
    await asyncio.sleep(0.005)
    raise ValueError("bad")

async def main():
    loop = asyncio.get_running_loop()
    print("fast:", await asyncio.wait_for(job("fast", 10), 0.050))
    try:
        await asyncio.wait_for(job("slow", 50), 0.010)
    except Exception as e:
        print("slow:", type(e).__name__)
    try:
        await asyncio.wait_for(fails(), 0.050)
    except Exception as e:
        print("fails:", type(e).__name__, e)
    try:
        await asyncio.wait_for(job("zero", 10), 0)
    except Exception as e:
        print("zero:", type(e).__name__)
    loop.call_soon(tick, 0)
    print("no timeout:", await asyncio.wait_for(job("none", 0), None))
    t = asyncio.create_task(job("task", 100))
    try:
        await asyncio.wait_for(t, 0.005)
    except Exception as e:
        print("task:", type(e).__name__, "cancelled:", t.cancelled())

asyncio.run(main())
