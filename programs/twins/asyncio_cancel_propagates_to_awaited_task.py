import asyncio
async def inner():
    try:
        await asyncio.sleep(0.1); print("inner done")
    finally:
        print("inner finally")
async def outer():
    try:
        await asyncio.create_task(inner()); print("outer done")
    except Exception as e:
        print("outer caught", e)
    finally:
        print("outer finally")
async def main():
    t = asyncio.create_task(outer())
    await asyncio.sleep(0.01)
    print("cancel returns", t.cancel())
    try:
        await t
    except Exception as e:
        print("never: cancellation is not caught")
    finally:
        print("main saw the cancel")
asyncio.run(main())
