import asyncio

def tick(n):
    print("tick", n)
    if n < 4:
        asyncio.get_running_loop().call_soon(tick, n + 1)

async def returns_after_cancelling_itself():
    print("A cancels itself:", asyncio.current_task().cancel())
    print("A still runs, cancelling:", asyncio.current_task().cancelling())
    return 1

async def awaits_after_cancelling_itself(f):
    asyncio.current_task().cancel()
    try:
        await f
        print("B never resumes normally")
    finally:
        print("B finally: f cancelled:", f.cancelled())

async def awaits_itself():
    print("C awaits itself")
    try:
        await asyncio.current_task()
    except Exception as e:
        print("C caught", type(e).__name__)

async def main():
    loop = asyncio.get_running_loop()
    a = asyncio.create_task(returns_after_cancelling_itself())
    r = await asyncio.gather(a, return_exceptions=True)
    print("A cancelled:", a.cancelled(), "result kind:", type(r[0]).__name__)
    f = loop.create_future()
    b = asyncio.create_task(awaits_after_cancelling_itself(f))
    c = asyncio.create_task(awaits_itself())
    loop.call_soon(tick, 0)
    await asyncio.sleep(0.010)
    print("B cancelled:", b.cancelled(), "C done:", c.done())

asyncio.run(main())
