import asyncio

async def job(name, ms):
    try:
        await asyncio.sleep(ms / 1000)
        print(name, "done")
        return name
    finally:
        print(name, "finally")

async def fails(ms, why):
    await asyncio.sleep(ms / 1000)
    raise ValueError(why)

async def main():
    async with asyncio.TaskGroup() as g:
        a = g.create_task(job("a", 40))
        b = g.create_task(job("b", 10))
        print("body ends")
    print("results:", a.result(), b.result())
    try:
        async with asyncio.TaskGroup() as g:
            g.create_task(job("slow", 50))
            g.create_task(fails(0, "first"))
            g.create_task(fails(0, "second"))
            await asyncio.sleep(0.030)
            print("body never gets here")
    except Exception as e:
        print(type(e).__name__, "|", e)
        for x in e.exceptions:
            print("  ", type(x).__name__, x)
    print("main cancelling:", asyncio.current_task().cancelling())
    try:
        async with asyncio.TaskGroup() as g:
            g.create_task(job("sibling", 40))
            await asyncio.sleep(0.005)
            raise KeyError("body failed")
    except Exception as e:
        print(type(e).__name__, "|", e, "|", type(e.exceptions[0]).__name__)
    async def outer():
        try:
            async with asyncio.TaskGroup() as g:
                g.create_task(job("inner", 100))
                await asyncio.sleep(0.100)
        finally:
            print("outer finally, cancelling:", asyncio.current_task().cancelling())
    o = asyncio.create_task(outer())
    await asyncio.sleep(0.010)
    o.cancel()
    await asyncio.sleep(0.010)
    print("outer cancelled:", o.cancelled())

asyncio.run(main())
