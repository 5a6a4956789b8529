import asyncio
async def worker(name):
    try:
        print(name, "started")
        await asyncio.sleep(0.1)
        print(name, "never finishes")
    except asyncio.CancelledError as e:
        print(name, "caught", type(e).__name__, "- cleaning up")
        raise e
async def bare():
    try:
        await asyncio.sleep(0.1)
    except Exception:
        print("bare catch never sees it")
    finally:
        print("bare finally")
async def main():
    t = asyncio.create_task(worker("w"))
    b = asyncio.create_task(bare())
    await asyncio.sleep(0.01)
    print("cancel", t.cancel(), b.cancel())
    try:
        await t
    except asyncio.CancelledError:
        print("main caught the cancellation of t")
    print("t cancelled:", t.cancelled())
    try:
        await b
    except (ValueError, asyncio.CancelledError) as e:
        print("main caught the cancellation of b:", type(e).__name__)
    print("b cancelled:", b.cancelled())
asyncio.run(main())
